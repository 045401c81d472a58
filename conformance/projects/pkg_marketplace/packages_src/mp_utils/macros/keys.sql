{#- A dbt_utils-style surrogate key: dispatched, calls helper macros. -#}
{% macro generate_key(field_list) -%}
    {{ return(adapter.dispatch('generate_key', 'mp_utils')(field_list)) }}
{%- endmacro %}

{% macro default__generate_key(field_list) -%}
    {%- set fields = [] -%}
    {%- for field in field_list -%}
        {%- do fields.append(mp_utils.safe_text(field)) -%}
        {%- if not loop.last -%}
            {%- do fields.append("'" ~ var('key_separator', '|') ~ "'") -%}
        {%- endif -%}
    {%- endfor -%}
    md5({{ mp_utils.concat_all(fields) }})
{%- endmacro %}

{% macro safe_text(field) -%}
    coalesce(cast({{ field }} as {{ mp_utils.type_text() }}), '_null_')
{%- endmacro %}

{% macro concat_all(fields) -%}
    {{ return(adapter.dispatch('concat_all', 'mp_utils')(fields)) }}
{%- endmacro %}

{% macro default__concat_all(fields) -%}
    concat({{ fields | join(', ') }})
{%- endmacro %}

{% macro postgres__concat_all(fields) -%}
    {{ fields | join(' || ') }}
{%- endmacro %}

{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'mp_utils')()) }}
{%- endmacro %}

{% macro default__type_text() -%}
    {{ return("varchar") }}
{%- endmacro %}

{% macro postgres__type_text() -%}
    {{ return("text") }}
{%- endmacro %}
