{% macro default__rw_local_today() -%}
    current_date
{%- endmacro %}
