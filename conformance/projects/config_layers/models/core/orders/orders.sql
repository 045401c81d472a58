-- project: table, tags layer_root+core+orders; YAML adds a tag; SQL config() adds one more
{{ config(tags=['from_sql'], meta={'sql_meta': true}) }}
select id as order_id, customer_id, status, amount from {{ source('shop', 'orders') }}
