-- YAML says view, config() says incremental: config() wins
{{ config(materialized='incremental', unique_key='item_id') }}
select * from {{ source('shop', 'order_items') }}
