-- a singular test's config() severity is kept as written
{{ config(severity = 'warn', error_if = '> 10') }}
select * from {{ ref('stg_codes') }} where code not in ('a', 'b')
