select {{ rw_utils.star(from=source('rw_raw', 'orders'), relation_alias='o') }}
from {{ source('rw_raw', 'orders') }} as o
