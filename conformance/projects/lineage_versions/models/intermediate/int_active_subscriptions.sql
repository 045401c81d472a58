-- first link of the ephemeral chain
select * from {{ ref('stg_subscriptions') }}
where ended_at is null
