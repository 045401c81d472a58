{#- dbt_utils.get_column_values-style: queries the warehouse only when execute is true.
    The query returns no rows, so the result is the same with or without a warehouse. -#}
{% macro known_currencies() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set results = run_query("select 'usd' as code where 1 = 0") -%}
    {{ return(results.columns[0].values() | list) }}
{%- endmacro %}
