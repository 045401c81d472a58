select 1 as order_id, 10 as customer_id, 'placed' as status, 25.5 as amount, current_date as ordered_at
