select
    {{ rw_utils.star(ref('stg_orders'), except=['status']) }}
from {{ ref('stg_orders') }}
