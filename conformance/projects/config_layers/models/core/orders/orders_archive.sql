-- disabled in YAML
select * from {{ ref('orders') }}
