{{ config(materialized='ephemeral') }}
select id from {{ ref('eph_broken') }}
