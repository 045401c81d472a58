{# written like dbt_utils 1.x: relation checks, star, union_relations, filtered columns #}
{% macro _is_relation(obj, macro) %}
    {%- if not (obj is mapping and obj.get('metadata', {}).get('type', '').endswith('Relation')) -%}
        {%- do exceptions.raise_compiler_error("Macro " ~ macro ~ " expected a Relation but received the value: " ~ obj) -%}
    {%- endif -%}
{% endmacro %}

{% macro _is_ephemeral(obj, macro) %}
    {%- if obj.is_cte -%}
        {%- do exceptions.raise_compiler_error("The `" ~ macro ~ "` macro cannot be used with ephemeral models") -%}
    {%- endif -%}
{% endmacro %}

{% macro get_filtered_columns_in_relation(from, except=[]) -%}
    {{ return(adapter.dispatch('get_filtered_columns_in_relation', 'rw_utils')(from, except)) }}
{% endmacro %}

{% macro default__get_filtered_columns_in_relation(from, except=[]) -%}
    {%- do rw_utils._is_relation(from, 'get_filtered_columns_in_relation') -%}
    {%- do rw_utils._is_ephemeral(from, 'get_filtered_columns_in_relation') -%}
    {%- if not execute -%}
        {{ return('') }}
    {% endif %}
    {%- set include_cols = [] %}
    {%- set cols = adapter.get_columns_in_relation(from) -%}
    {%- set except = except | map("lower") | list %}
    {%- for col in cols -%}
        {%- if col.column|lower not in except -%}
            {% do include_cols.append(col.column) %}
        {%- endif %}
    {%- endfor %}
    {{ return(include_cols) }}
{%- endmacro %}

{% macro star(from, relation_alias=False, except=[], prefix='', suffix='', quote_identifiers=True) -%}
    {{ return(adapter.dispatch('star', 'rw_utils')(from, relation_alias, except, prefix, suffix, quote_identifiers)) }}
{% endmacro %}

{% macro default__star(from, relation_alias=False, except=[], prefix='', suffix='', quote_identifiers=True) -%}
    {%- do rw_utils._is_relation(from, 'star') -%}
    {%- do rw_utils._is_ephemeral(from, 'star') -%}
    {%- if not execute -%}
        {% do return('*') %}
    {%- endif -%}
    {% set cols = rw_utils.get_filtered_columns_in_relation(from, except) %}
    {%- if cols|length <= 0 -%}
        {% if flags.WHICH == 'compile' %}
            {% set response %}
*
/* No columns were returned. Maybe the relation doesn't exist yet
or all columns were excluded. */
            {% endset %}
            {% do return(response) %}
        {% else %}
            {% do return("/* no columns returned from star() macro */") %}
        {% endif %}
    {%- else -%}
        {%- for col in cols %}
            {%- if relation_alias %}{{ relation_alias }}.{% endif -%}
            {%- if quote_identifiers -%}{{ adapter.quote(col) | trim }}{%- else -%}{{ col | trim }}{%- endif -%}
            {%- if not loop.last %},{{ '\n  ' }}{%- endif -%}
        {%- endfor -%}
    {% endif %}
{%- endmacro %}

{%- macro union_relations(relations, column_override=none, include=[], exclude=[], source_column_name='_dbt_source_relation', where=none) -%}
    {{ return(adapter.dispatch('union_relations', 'rw_utils')(relations, column_override, include, exclude, source_column_name, where)) }}
{% endmacro %}

{%- macro default__union_relations(relations, column_override=none, include=[], exclude=[], source_column_name='_dbt_source_relation', where=none) -%}
    {%- if exclude and include -%}
        {{ exceptions.raise_compiler_error("Both an exclude and include list were provided to the `union` macro. Only one is allowed") }}
    {%- endif -%}
    {%- if not execute %}
        {{ return('') }}
    {% endif -%}
    {%- set column_override = column_override if column_override is not none else {} -%}
    {%- set relation_columns = {} -%}
    {%- set column_superset = {} -%}
    {%- set all_excludes = [] -%}
    {%- set all_includes = [] -%}
    {%- for relation in relations -%}
        {%- do relation_columns.update({relation: []}) -%}
        {%- do rw_utils._is_relation(relation, 'union_relations') -%}
        {%- do rw_utils._is_ephemeral(relation, 'union_relations') -%}
        {%- set cols = adapter.get_columns_in_relation(relation) -%}
        {%- for col in cols -%}
            {%- if col.column not in column_superset -%}
                {%- do column_superset.update({col.column: col}) -%}
            {%- endif -%}
        {%- endfor %}
    {%- endfor -%}
    {%- set ordered_column_names = column_superset.keys() -%}
    {%- set dbt_command = flags.WHICH -%}
    {% if dbt_command in ['run', 'build'] %}
    {% if (include | length > 0 or exclude | length > 0) and not column_superset.keys() %}
        {%- do exceptions.raise_compiler_error('no columns') -%}
    {%- endif %}
    {%- endif %}
    {%- for relation in relations %}
        (
            select
                {%- if source_column_name is not none %}
                cast({{ dbt.string_literal(relation) }} as {{ dbt.type_string() }}) as {{ source_column_name }},
                {%- endif %}
                {% for col_name in ordered_column_names -%}
                    {{ col_name }}{% if not loop.last %},{% endif %}
                {% endfor %}
            from {{ relation }}
            {% if where -%}
            where {{ where }}
            {%- endif %}
        )
        {% if not loop.last -%}
            union all
        {% endif -%}
    {%- endfor -%}
{%- endmacro -%}
