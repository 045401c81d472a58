select
    {{ adapter.dispatch('rw_local_today', 'no_such_package')() }} as today,
    {{ adapter.dispatch('rw_local_today', macro_namespace='realworld_lab')() }} as today_root
from {{ ref('stg_orders') }}
