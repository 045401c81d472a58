select 1 as customer_id from {{ source('raw', 'customers') }}
