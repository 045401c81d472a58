select date_trunc('day', started_at) as day, count(*) as n
from {{ ref('stg_web__sessions') }}
group by 1
