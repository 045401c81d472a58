{#- dbt's `graph` context (what audit/inventory macros use). At compile time it holds every node. -#}
{%- set staging = [] -%}
{%- if execute -%}
    {%- for node in graph.nodes.values()
            | selectattr("resource_type", "equalto", "model")
            | selectattr("package_name", "equalto", "macro_lab")
            | sort(attribute="name") -%}
        {%- if node.path.startswith("staging") -%}
            {%- do staging.append(node.name) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}
{%- set n_sources = graph.sources.values() | list | length if execute else 0 -%}
select
{%- for name in staging %}
    '{{ name }}' as model_{{ loop.index }},
{%- endfor %}
    {{ n_sources }} as n_sources
