-- v3 is defined in a file with its own name (defined_in) and is a prerelease
select user_id, email, plan_id, started_at from {{ ref('int_user_plans') }}
