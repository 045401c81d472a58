{#- Root override of a dbt cross-database macro, found first through the
    `dispatch:` search_order for the `dbt` namespace. -#}
{% macro postgres__type_string() -%}
    varchar(512)
{%- endmacro %}

{#- Our own dispatched macro with both variants: postgres__ wins on postgres. -#}
{% macro week_start(column) -%}
    {{ return(adapter.dispatch('week_start', 'macro_lab')(column)) }}
{%- endmacro %}

{% macro default__week_start(column) -%}
    {{ dbt.date_trunc('week', column) }}
{%- endmacro %}

{% macro postgres__week_start(column) -%}
    ({{ dbt.date_trunc('week', column) }})::date
{%- endmacro %}

{#- Only a default__ implementation: used on every adapter. -#}
{% macro safe_divide(num, den) -%}
    {{ return(adapter.dispatch('safe_divide', 'macro_lab')(num, den)) }}
{%- endmacro %}

{% macro default__safe_divide(num, den) -%}
    ({{ num }}) / nullif({{ den }}, 0)
{%- endmacro %}
