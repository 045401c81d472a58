{%- set other = api.Relation.create(database=target.database, schema='other', identifier='thing') -%}
{%- set no_db = other.include(database=false) -%}
{%- set bare_id = other.quote(identifier=false) -%}
select
    '{{ other }}' as created,
    '{{ no_db }}' as without_database,
    '{{ bare_id }}' as identifier_unquoted,
    '{{ adapter.quote("Mixed Case") }}' as quoted_column,
    '{{ this }}' as this_relation,
    '{{ this.database }}|{{ this.schema }}|{{ this.identifier }}' as this_parts,
    '{{ target.type }}|{{ target.name }}|{{ target.database }}|{{ target.schema }}' as target_parts,
    {%- if target.type == 'bigquery' %}
    '{{ target.project }}|{{ target.dataset }}' as warehouse_names,
    {%- elif target.type == 'databricks' %}
    '{{ target.catalog }}' as warehouse_names,
    {%- else %}
    '{{ target.database }}' as warehouse_names,
    {%- endif %}
    '{{ dialect_name() }}' as dialect,
    '{{ adapter.type() }}' as adapter_type
from {{ ref('event_rollup') }}
join {{ ref('country_codes') }} on true
