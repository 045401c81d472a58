{{ config(materialized='table') }}
select * from {{ ref('eph_chain') }}
union all
select * from {{ ref('eph_fine') }}
