{{ config(alias_prefix='') }}
select * from {{ ref('sessions_daily') }}
cross join {{ ref('fct_ledger') }}
