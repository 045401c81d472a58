{%- set rel = ref('stg_orders') -%}
select
    '{{ rel is mapping }}' as is_mapping,
    '{{ rel.get("metadata", {}).get("type", "") }}' as relation_type,
    '{{ source("rw_raw", "orders") is mapping }}' as source_is_mapping,
    '{{ this.get("metadata", {}).get("type", "").endswith("Relation") }}' as this_ok,
    '{{ rel.identifier }}' as identifier
from {{ ref('stg_orders') }}
