{{ config(materialized='ephemeral') }}
select user_id, date_trunc('day', occurred_at) as usage_day, count(*) as n_events
from {{ source('app', 'usage_events') }}
group by 1, 2
