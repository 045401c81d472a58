{#- dbt-snowflake 1.7.5's own macros (package dbt_snowflake) where dbt's output depends on them: the
    adapter's variants of dbt's cross-database and built-in macros, copied from the package. -#}

{#- macros/utils/array_construct.sql -#}
{% macro snowflake__array_construct(inputs, data_type) -%}
    array_construct( {{ inputs|join(' , ') }} )
{%- endmacro %}

{#- macros/utils/bool_or.sql -#}
{% macro snowflake__bool_or(expression) -%}

    boolor_agg({{ expression }})

{%- endmacro %}

{#- macros/utils/escape_single_quotes.sql -#}
{% macro snowflake__escape_single_quotes(expression) -%}
{{ expression | replace("'", "\\'") }}
{%- endmacro %}

{#- macros/utils/right.sql -#}
{% macro snowflake__right(string_text, length_expression) %}

    case when {{ length_expression }} = 0
        then ''
    else
        right(
            {{ string_text }},
            {{ length_expression }}
        )
    end

{%- endmacro -%}

{#- macros/utils/safe_cast.sql -#}
{% macro snowflake__safe_cast(field, type) %}
    try_cast({{field}} as {{type}})
{% endmacro %}

{#- macros/utils/timestamps.sql -#}
{% macro snowflake__current_timestamp() -%}
  convert_timezone('UTC', current_timestamp())
{%- endmacro %}


{% macro snowflake__current_timestamp_backcompat() %}
  current_timestamp::{{ type_timestamp() }}
{% endmacro %}

{% macro snowflake__current_timestamp_in_utc_backcompat() %}
  convert_timezone('UTC', {{ snowflake__current_timestamp_backcompat() }})::{{ type_timestamp() }}
{% endmacro %}
