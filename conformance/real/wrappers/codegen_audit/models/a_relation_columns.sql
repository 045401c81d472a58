{{ audit_helper.compare_relation_columns(a_relation=ref('a_orders'), b_relation=ref('a_orders_v2')) }}
