{{ config(materialized='table') }}
select 1 as id
{%- if execute %}
    , {{ edge_macro_that_does_not_exist() }}
{%- endif %}
