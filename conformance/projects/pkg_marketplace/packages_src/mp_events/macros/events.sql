{% macro recent_events_filter(column) -%}
    {{ column }} >= current_date - interval '{{ var("events_lookback_days") }} days'
{%- endmacro %}
