select o.*, c.customer_id as c_id from {{ ref('stg_orders') }} o join {{ ref('stg_customers') }} c using (customer_id)
