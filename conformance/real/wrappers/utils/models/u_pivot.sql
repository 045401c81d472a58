select
    customer_id,
    {{ dbt_utils.pivot('status', dbt_utils.get_column_values(ref('base_orders'), 'status', default=['placed', 'shipped'])) }},
    {{ dbt_utils.pivot('status', ['placed', 'returned'], agg='max', then_value='amount', else_value='0', prefix='amt_', quote_identifiers=false) }}
from {{ ref('base_orders') }}
group by 1
