{#- Seeds in `raw` keep their custom schema verbatim; everything else uses dbt's default. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if node.resource_type == 'seed' and custom_schema_name == 'raw' -%}
        raw
    {%- else -%}
        {{ default__generate_schema_name(custom_schema_name, node) }}
    {%- endif -%}
{%- endmacro %}

{% macro payment_methods() -%}
    {{ return(['credit_card', 'coupon', 'bank_transfer', 'gift_card']) }}
{%- endmacro %}

{% macro country_lookup(column) -%}
    (select name from {{ ref('country_codes') }} cc where cc.code = {{ column }})
{%- endmacro %}
