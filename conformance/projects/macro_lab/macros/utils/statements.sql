{#- The statement/load_result pattern of older projects. The query returns no rows, so the
    result does not depend on what the warehouse holds. -#}
{% macro last_loaded_day(default_day) -%}
    {%- call statement('last_day', fetch_result=True) -%}
        select current_date as day where 1 = 0
    {%- endcall -%}
    {%- if execute -%}
        {%- set result = load_result('last_day') -%}
        {%- set rows = result['data'] if result else [] -%}
        {%- do log('last_loaded_day: ' ~ (rows | length) ~ ' row(s)', info=false) -%}
        {{ return(rows[0][0] if rows else default_day) }}
    {%- endif -%}
    {{ return(default_day) }}
{%- endmacro %}
