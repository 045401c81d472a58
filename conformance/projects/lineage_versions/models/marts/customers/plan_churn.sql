-- uses the first ephemeral directly as well (the CTE appears once)
select plan_id, count(*) as active
from {{ ref('int_active_subscriptions') }}
where user_id in (select user_id from {{ ref('int_user_plans') }})
group by 1
