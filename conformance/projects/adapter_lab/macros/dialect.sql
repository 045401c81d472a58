{#- One macro per dialect family: which variant wins shows the dispatch order. -#}
{% macro dialect_name() -%}
    {{ return(adapter.dispatch('dialect_name', 'adapter_lab')()) }}
{%- endmacro %}

{% macro default__dialect_name() -%}
    {{ return('default') }}
{%- endmacro %}

{% macro postgres__dialect_name() -%}
    {{ return('postgres family') }}
{%- endmacro %}

{% macro spark__dialect_name() -%}
    {{ return('spark family') }}
{%- endmacro %}

{% macro snowflake__dialect_name() -%}
    {{ return('snowflake') }}
{%- endmacro %}

{#- Only a default and a bigquery variant: every other adapter falls back to default. -#}
{% macro limit_clause(n) -%}
    {{ adapter.dispatch('limit_clause', 'adapter_lab')(n) }}
{%- endmacro %}

{% macro default__limit_clause(n) -%}
    limit {{ n }}
{%- endmacro %}

{% macro bigquery__limit_clause(n) -%}
    limit {{ n }} /* bigquery */
{%- endmacro %}
