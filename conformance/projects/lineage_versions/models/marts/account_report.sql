select a.*, old.email as legacy_email, nxt.started_at
from {{ ref('dim_accounts') }} as a
left join {{ ref('dim_accounts', v=1) }} as old using (user_id)
left join {{ ref('dim_accounts', version=3) }} as nxt using (user_id)
left join {{ ref('lineage_versions', 'customer_health') }} as h using (user_id)
