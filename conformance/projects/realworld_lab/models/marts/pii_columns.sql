{#- reads per-column meta of other nodes through graph, as masking/PII packages do -#}
{%- set pii = [] -%}
{%- if execute -%}
{%- for node in graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | sort(attribute='unique_id') -%}
    {%- for col in node.columns.values() -%}
        {%- if col.meta.get('pii') -%}
            {%- do pii.append(node.name ~ '.' ~ col.name ~ ':' ~ (col.data_type or '') ~ ':' ~ col.meta.get('masking', 'none')) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endfor -%}
{%- for src in graph.sources.values() | sort(attribute='unique_id') -%}
    {%- for col in src.columns.values() if col.meta.pii -%}
        {%- do pii.append(src.name ~ '.' ~ col.name) -%}
    {%- endfor -%}
{%- endfor -%}
{%- endif -%}
select '{{ pii | join(", ") }}' as pii_columns
