{{ config(materialized='view') }}
select plan_id, {{ to_eur('sum(amount)', '1.1') }} as mrr_eur
from {{ ref('dim_accounts', v=2) }}
join {{ ref('stg_subscriptions') }} using (plan_id)
group by 1
