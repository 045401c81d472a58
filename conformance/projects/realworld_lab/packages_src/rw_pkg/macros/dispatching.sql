{# a package whose dispatch names a namespace that is not installed: dbt searches globally #}
{% macro rw_week_start(col) -%}
    {{ return(adapter.dispatch('rw_week_start', 'rw_not_installed')(col)) }}
{%- endmacro %}

{% macro default__rw_week_start(col) -%}
    date_trunc('week', {{ col }})
{%- endmacro %}
