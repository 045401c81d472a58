select 1 as return_id, 1 as order_id, 5.0 as amount, current_date as returned_at
