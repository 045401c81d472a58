select user_id, email from {{ ref('stg_users') }}
