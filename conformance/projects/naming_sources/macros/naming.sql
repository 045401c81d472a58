{#- In prod, custom schemas are used verbatim; elsewhere everything goes to the target
    schema (the classic generate_schema_name_for_env pattern, written out). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set default_schema = target.schema -%}
    {%- if target.name == 'prod' and custom_schema_name is not none -%}
        {{ custom_schema_name | trim }}
    {%- elif custom_schema_name is none -%}
        {{ default_schema }}
    {%- else -%}
        {{ default_schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{#- Aliases: an explicit alias wins; models under ops/ get a config-driven prefix;
    versioned models keep dbt's default `<name>_v<version>`. -#}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- if custom_alias_name -%}
        {{ custom_alias_name | trim | lower }}
    {%- elif node.config.get('alias_prefix') -%}
        {{ node.config.get('alias_prefix') ~ node.name }}
    {%- elif node.version -%}
        {{ return(node.name ~ "_v" ~ (node.version | replace(".", "_"))) }}
    {%- else -%}
        {{ node.name }}
    {%- endif -%}
{%- endmacro %}

{#- Databases: custom ones get an environment suffix outside prod. -#}
{% macro generate_database_name(custom_database_name=none, node=none) -%}
    {%- if custom_database_name is none -%}
        {{ target.database }}
    {%- elif target.name == 'prod' -%}
        {{ custom_database_name | trim }}
    {%- else -%}
        {{ custom_database_name | trim }}_{{ target.name }}
    {%- endif -%}
{%- endmacro %}
