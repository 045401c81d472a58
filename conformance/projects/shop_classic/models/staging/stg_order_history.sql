select id as order_id, status, dbt_valid_from, dbt_valid_to
from {{ ref('orders_snapshot') }}
