select
    {{ dbt_utils.generate_surrogate_key(['order_id', 'customer_id']) }} as order_key,
    {{ dbt_utils.safe_add(['amount', 'amount']) }} as double_amount,
    {{ dbt_utils.safe_divide('amount', 'customer_id') }} as ratio,
    {{ dbt_utils.safe_subtract(['amount', '1']) }} as minus_one,
    {{ dbt_utils.haversine_distance(48.864716, 2.349014, 52.379189, 4.899431) }} as dist
from {{ ref('base_orders') }}
{{ dbt_utils.group_by(n=5) }}
