select s.*, p.url
from {{ source('web', 'sessions') }} as s
join {{ source('web', 'pages') }} as p using (page_id)
union all
select null, null from {{ source('Legacy_Web', 'Hits') }}
