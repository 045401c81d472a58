{{ dbt_utils.union_relations(relations=[ref('base_orders'), ref('base_returns')], exclude=['_loaded_at']) }}
