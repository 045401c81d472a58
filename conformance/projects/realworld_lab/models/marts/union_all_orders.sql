{{ rw_utils.union_relations(relations=[ref('stg_orders'), ref('stg_refunds'), source('rw_raw', 'refunds')]) }}
