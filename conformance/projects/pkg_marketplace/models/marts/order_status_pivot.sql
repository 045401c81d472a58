select
    customer_id,
    {{ mp_utils.pivot('status', ['placed', 'shipped'], agg='max', prefix='is_', quote_identifiers=true) }}
from {{ ref('stg_orders') }}
group by 1
