{#- project_evaluator / elementary style: the generic test sets its own config -#}
{% test rw_is_empty(model) %}
    {{ config(severity = 'warn', fail_calc = "n_records", tags = ['rw-tests']) }}
    select count(*) as n_records from {{ model }}
{% endtest %}
