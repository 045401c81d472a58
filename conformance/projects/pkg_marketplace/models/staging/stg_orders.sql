select
    {{ mp_utils.generate_key(['order_id', 'customer_id']) }} as order_key,
    order_id,
    customer_id,
    amount,
    '{{ var("region") }}' as region,
    '{{ var("currency") }}' as currency,
    {{ var("fiscal_start_month") }} as fiscal_start_month,
    '{{ var("events_lookback_days", "not visible in root") }}' as lookback
from {{ source('shop', 'orders') }}
where amount >= {{ var("min_order_amount") }}
