{% test matches_pattern(model, column_name, pattern) %}
select * from {{ model }} where {{ column_name }} !~ '{{ pattern }}'
{% endtest %}
