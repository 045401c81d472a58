select 1 as order_id, 'shipped' as status
