{{ config(enabled=true, alias='customer_base') }}
select id as customer_id, name, country from {{ source('shop', 'customers') }}
