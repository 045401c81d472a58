{{ config(alias='Vendors_Clean') }}
select v.*, c.name as cost_center
from {{ source('erp', 'vendors') }} as v
left join {{ source('erp', 'cost_centers') }} as c using (cost_center_id)
