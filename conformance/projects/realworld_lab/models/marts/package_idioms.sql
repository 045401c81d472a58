select
    '{{ rw_key_columns(column_name="order_id") }}' as one_key,
    '{{ rw_key_columns(column_names=["a", "b"]) }}' as two_keys,
    '{{ rw_key_columns(column_name="again") }}' as fresh_default,
    cast(null as {{ rw_pick_type() }}) as ts,
    {{ dbt.current_timestamp_backcompat() }} as now_backcompat,
    {{ dbt.current_timestamp_in_utc_backcompat() }} as now_utc_backcompat
from {{ ref('stg_orders') }}
