{{ config(materialized='table', indexes=[{'columns': ['order_id'], 'unique': True}], unlogged=True) }}
{{ config(tags=['enriched'], owner_team='fulfilment') }}
{#- a Jinja comment with {{ ref('customers') }} is not a dependency -#}
-- an SQL comment with {{ ref('stg_payments') }} still is one (dbt renders it)
{% set orders_rel = ref('orders') %}
select o.*, '{{ orders_rel.identifier }}' as source_table
from {{ orders_rel }} as o
-- Åse, Øystein & Zoë: non-ASCII text stays as written
where o.status <> 'returned'
