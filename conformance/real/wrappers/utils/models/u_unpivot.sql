{{ dbt_utils.unpivot(relation=ref('base_orders'), cast_to='varchar', exclude=['order_id'], field_name='col', value_name='val') }}
