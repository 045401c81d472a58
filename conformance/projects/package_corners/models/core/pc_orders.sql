select 1 as order_id, 'a' as code, 10 as amount
