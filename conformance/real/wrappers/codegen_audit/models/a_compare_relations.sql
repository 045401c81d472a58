{{ audit_helper.compare_relations(a_relation=ref('a_orders'), b_relation=ref('a_orders_v2'), primary_key='order_id') }}
