{{ config(tags='dashboard', schema='exec') }}
select * from {{ ref('revenue_by_country') }}
