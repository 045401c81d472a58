{{ config(pre_hook="set local statement_timeout = '5min'") }}
{% set methods = payment_methods() %}

with orders as (
    select * from {{ ref('stg_orders') }}
),

payments as (
    select * from {{ ref('stg_payments') }}
),

order_payments as (
    select
        order_id,
        {% for m in methods -%}
        sum(case when payment_method = '{{ m }}' then amount else 0 end) as {{ m }}_amount,
        {% endfor -%}
        sum(amount) as total_amount
    from payments
    group by order_id
)

select
    orders.order_id,
    orders.customer_id,
    orders.order_date,
    orders.status,
    {% for m in methods -%}
    order_payments.{{ m }}_amount,
    {% endfor -%}
    order_payments.total_amount as amount
from orders
left join order_payments on orders.order_id = order_payments.order_id
