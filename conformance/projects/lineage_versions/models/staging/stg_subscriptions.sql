select id as subscription_id, user_id, plan_id, started_at, ended_at
from {{ source('app', 'subscriptions') }}
