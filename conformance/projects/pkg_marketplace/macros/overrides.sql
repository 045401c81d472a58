{#- Root overrides for mp_utils dispatched macros (search_order puts the root first).
    A root default__ beats the package's postgres__ implementation. -#}
{% macro default__day_of(column) -%}
    ({{ column }})::date
{%- endmacro %}

{#- Not an override: mp_utils looks for postgres__type_text in the root first,
    finds nothing, then default__type_text in the root (not defined), then the package's. -#}
{% macro fiscal_quarter(column) -%}
    extract(quarter from {{ column }} - interval '{{ var("fiscal_start_month") - 1 }} months')
{%- endmacro %}
