{{ config(materialized='view') }}

select
    c.customer_id,
    c.full_name,
    e.*
from {{ ref('stg_customers') }} as c
cross join {{ ref('mp_events', 'events_daily') }} as e
