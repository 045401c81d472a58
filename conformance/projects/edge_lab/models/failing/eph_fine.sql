{{ config(materialized='ephemeral') }}
select 2 as id
