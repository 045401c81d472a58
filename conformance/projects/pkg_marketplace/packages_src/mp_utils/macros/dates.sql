{% macro day_of(column) -%}
    {{ return(adapter.dispatch('day_of', 'mp_utils')(column)) }}
{%- endmacro %}

{% macro default__day_of(column) -%}
    cast({{ column }} as date)
{%- endmacro %}

{% macro postgres__day_of(column) -%}
    date_trunc('day', {{ column }})::date
{%- endmacro %}

{% macro pivot(column, values, agg='sum', then_value=1, else_value=0, prefix='', suffix='', quote_identifiers=false) -%}
    {%- for value in values -%}
        {{ agg }}(case when {{ column }} = '{{ value }}' then {{ then_value }} else {{ else_value }} end)
        as {% if quote_identifiers %}"{{ prefix ~ value ~ suffix }}"{% else %}{{ prefix ~ value ~ suffix }}{% endif %}
        {%- if not loop.last %},{% endif %}
    {% endfor -%}
{%- endmacro %}
