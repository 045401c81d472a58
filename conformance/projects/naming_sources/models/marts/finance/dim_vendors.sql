{{ config(schema='vendor_mart', database='procurement') }}
select * from {{ ref('stg_erp__vendors') }}
