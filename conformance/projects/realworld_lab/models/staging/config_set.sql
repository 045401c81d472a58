{{ config.set('materialized', 'table') }}
{% do config.set('tags', ['set_by_config_set']) %}
{%- set rel = load_relation(ref('stg_orders')) -%}
{%- set cached = load_cached_relation(this) -%}
select
    {{ set_strict([1, 2, 2, 3]) | length }} as n_unique,
    '{{ rel is none }}' as rel_missing,
    '{{ cached is none }}' as cached_missing,
    {% for a, b in zip_strict([1, 2], ['x', 'y']) %}'{{ a }}{{ b }}' as c{{ a }}{% if not loop.last %}, {% endif %}{% endfor %}
