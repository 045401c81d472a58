select 1 as customer_id, 'a@b.c' as email
