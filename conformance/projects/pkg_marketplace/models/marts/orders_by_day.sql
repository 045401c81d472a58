select
    {{ mp_utils.day_of('ordered_at') }} as order_day,
    count(*) as n_orders
from {{ ref('stg_orders') }}
group by 1
