select user_id, email, plan_id from {{ ref('int_user_plans') }}
