select 1 as order_id, 1 as customer_id from {{ ref('k_customers') }}
