-- table built on two ephemerals, one of which is itself built on an ephemeral
select
    p.user_id,
    p.plan_id,
    coalesce(sum(u.n_events), 0) as events_30d
from {{ ref('int_user_plans') }} as p
left join {{ ref('int_usage_daily') }} as u using (user_id)
group by 1, 2
