{#- dbt-databricks 1.7.17's own macros (package dbt_databricks) where dbt's output depends on them: the
    adapter's variants of dbt's cross-database and built-in macros, copied from the package. -#}

{#- macros/get_custom_name/get_custom_database.sql -#}
{% macro databricks__generate_database_name(custom_database_name=none, node=none) -%}
    {%- set default_database = target.database -%}
    {%- if custom_database_name is none -%}
        {{ return(default_database) }}
    {%- else -%}
        {{ return(custom_database_name) }}
    {%- endif -%}
{%- endmacro %}

{#- macros/utils/dateadd.sql -#}
{% macro databricks__dateadd(datepart, interval, from_date_or_timestamp) %}
  {%- if adapter.compare_dbr_version(10, 4) >= 0 -%}
    timestampadd({{datepart}}, {{interval}}, {{from_date_or_timestamp}})
  {%- else -%}
    {{ spark__dateadd(datepart, interval, from_date_or_timestamp) }}
  {%- endif -%}
{%- endmacro %}

{#- macros/utils/datediff.sql -#}
{% macro databricks__datediff(first_date, second_date, datepart) %}
  {%- if adapter.compare_dbr_version(10, 4) >= 0 -%}
    timestampdiff({{datepart}}, {{date_trunc(datepart, first_date)}}, {{date_trunc(datepart, second_date)}})
  {%- else -%}
    {{ spark__datediff(first_date, second_date, datepart) }}
  {%- endif -%}
{%- endmacro %}

