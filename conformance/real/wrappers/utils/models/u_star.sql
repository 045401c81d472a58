select {{ dbt_utils.star(from=ref('base_orders'), except=['amount'], relation_alias='o', prefix='o_') }}
from {{ ref('base_orders') }} as o
