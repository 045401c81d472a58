{{ audit_helper.compare_column_values(a_query="select * from " ~ ref('a_orders'), b_query="select * from " ~ ref('a_orders_v2'), primary_key='order_id', column_to_compare='status') }}
