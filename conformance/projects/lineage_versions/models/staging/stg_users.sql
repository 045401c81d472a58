select id as user_id, email, created_at, plan_id from {{ source('app', 'users') }}
