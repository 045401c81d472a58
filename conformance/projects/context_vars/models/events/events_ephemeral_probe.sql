{{ config(materialized='ephemeral') }}
select '{{ this }}' as this_in_ephemeral, * from {{ ref('events_daily') }}
