{#- dbt_constraints-style: append to a list default; elementary-style: `macro or fallback` truthiness -#}
{% macro rw_key_columns(column_name=none, column_names=[]) -%}
    {%- if column_names | count == 0 and column_name -%}
        {%- do column_names.append(column_name) -%}
    {%- endif -%}
    {{ return(column_names | join(', ')) }}
{%- endmacro %}

{% macro rw_pick_type() -%}
    {%- set macro = dbt.type_timestamp or rw_utils.missing_macro -%}
    {%- if not macro -%}
        {{ exceptions.raise_compiler_error("no type_timestamp macro") }}
    {%- endif -%}
    {{ return(macro()) }}
{%- endmacro %}
