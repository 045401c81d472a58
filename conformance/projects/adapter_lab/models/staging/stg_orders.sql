select o.*, c.name as customer_name
from {{ source('raw', 'orders') }} as o
left join {{ source('legacy', 'customers') }} as c on c.id = o.customer_id
