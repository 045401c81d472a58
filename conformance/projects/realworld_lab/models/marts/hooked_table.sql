{#- project_evaluator-style: a macro in a post_hook and one called only when execute is true -#}
{{ config(materialized='table', post_hook="{{ rw_audit_hook(this) }}") }}
{% if execute %}
    {{ rw_check_is_table(model) }}
{% endif %}
select 1 as id
