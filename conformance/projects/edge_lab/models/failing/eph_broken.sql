{{ config(materialized='ephemeral') }}
{#- parses (execute is false then), fails when dbt compiles it -#}
select 1 as id
{%- if execute %}
    , {{ exceptions.raise_compiler_error("eph_broken cannot compile") }}
{%- endif %}
