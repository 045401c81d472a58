{% macro country_filter(column) -%}
    {{ column }} in ({% for c in var('countries') %}'{{ c }}'{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{#- ref() and source() inside a macro still make the calling model depend on them -#}
{% macro latest_fx_rates() -%}
    (select * from {{ source('finance', 'fx_rates') }} where day = (select max(day) from {{ ref('fx_days') }}))
{%- endmacro %}

{% macro incremental_window(column, days=none) -%}
    {%- set d = days if days is not none else var('lookback_days') -%}
    {%- if is_incremental() -%}
    where {{ column }} > (select max({{ column }}) - interval '{{ d }} days' from {{ this }})
    {%- else -%}
    where {{ column }} >= '{{ var("start_date") }}'
    {%- endif -%}
{%- endmacro %}
