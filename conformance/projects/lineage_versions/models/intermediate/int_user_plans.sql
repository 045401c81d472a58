-- second link: an ephemeral that selects from another ephemeral
select u.user_id, u.email, s.plan_id, s.started_at
from {{ ref('stg_users') }} as u
join {{ ref('int_active_subscriptions') }} as s using (user_id)
