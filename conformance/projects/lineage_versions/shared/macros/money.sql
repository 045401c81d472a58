{% macro to_eur(column, rate_column='fx_rate') -%}
    round({{ column }} * {{ rate_column }}, 2)
{%- endmacro %}
