{{ config(materialized='view') }}
select * from {{ ref('events_ephemeral_probe') }}
