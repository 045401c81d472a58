{{ config(materialized='incremental', incremental_strategy='append') }}
select date_trunc('day', occurred_at) as day, count(*) as n
from {{ ref('events_enriched') }}
{% if is_incremental() %}
where occurred_at > (select max(day) from {{ this }})
{% endif %}
group by 1
