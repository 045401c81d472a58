{{
    config(
        materialized='incremental',
        unique_key=['user_id', 'usage_day'],
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns'
    )
}}
select * from {{ ref('int_usage_daily') }}
{% if is_incremental() %}
where usage_day >= (select max(usage_day) from {{ this }})
{% else %}
-- full refresh of {{ this.identifier }} in {{ this.schema }}
{% endif %}
