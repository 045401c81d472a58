{{ audit_helper.compare_row_counts(a_relation=ref('a_orders'), b_relation=ref('a_orders_v2')) }}
