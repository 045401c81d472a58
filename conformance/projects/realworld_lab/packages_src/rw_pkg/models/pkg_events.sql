select
    '{{ this }}' as this_relation,
    '{{ var("rw_pkg_events_table") }}' as events_table,
    '{{ var("rw_start_date") }}' as start_date
from {{ ref('stg_orders') }}
