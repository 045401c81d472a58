select
    c.customer_id,
    c.first_name,
    min(o.order_date) as first_order,
    count(o.order_id) as number_of_orders,
    sum(o.amount) as customer_lifetime_value,
    max(h.dbt_valid_from) as last_status_change
from {{ ref('stg_customers') }} c
left join {{ ref('orders') }} o using (customer_id)
left join {{ ref('stg_order_history') }} h using (order_id)
group by 1, 2
