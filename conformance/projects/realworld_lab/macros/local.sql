{% macro default__rw_local_today() -%}
    current_date
{%- endmacro %}

{% macro rw_audit_hook(relation) -%}
    insert into audit_log values ('{{ relation }}')
{%- endmacro %}

{% macro rw_check_is_table(model) -%}
    {%- if model.config.materialized != 'table' -%}
        {{ exceptions.raise_compiler_error('not a table') }}
    {%- endif -%}
{%- endmacro %}
