{{ config(database='analytics_db', schema='sales', alias='orders_by_customer') }}
select customer_name, count(*) as orders
from {{ ref('stg_orders') }}
group by customer_name
