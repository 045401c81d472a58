{#- dbt-bigquery 1.7.9's own macros (package dbt_bigquery) where dbt's output depends on them: the
    adapter's variants of dbt's cross-database and built-in macros, copied from the package. -#}

{#- macros/adapters.sql -#}
{% macro bigquery__test_unique(model, column_name) %}

with dbt_test__target as (

  select {{ column_name }} as unique_field
  from {{ model }}
  where {{ column_name }} is not null

)

select
    unique_field,
    count(*) as n_records

from dbt_test__target
group by unique_field
having count(*) > 1

{% endmacro %}

{#- macros/utils/array_append.sql -#}
{% macro bigquery__array_append(array, new_element) -%}
    {{ array_concat(array, array_construct([new_element])) }}
{%- endmacro %}

{#- macros/utils/array_concat.sql -#}
{% macro bigquery__array_concat(array_1, array_2) -%}
    array_concat({{ array_1 }}, {{ array_2 }})
{%- endmacro %}

{#- macros/utils/array_construct.sql -#}
{% macro bigquery__array_construct(inputs, data_type) -%}
    {% if inputs|length > 0 %}
    [ {{ inputs|join(' , ') }} ]
    {% else %}
    ARRAY<{{data_type}}>[]
    {% endif %}
{%- endmacro %}

{#- macros/utils/bool_or.sql -#}
{% macro bigquery__bool_or(expression) -%}

    logical_or({{ expression }})

{%- endmacro %}

{#- macros/utils/date_trunc.sql -#}
{% macro bigquery__date_trunc(datepart, date) -%}
    timestamp_trunc(
        cast({{date}} as timestamp),
        {{datepart}}
    )

{%- endmacro %}

{#- macros/utils/dateadd.sql -#}
{% macro bigquery__dateadd(datepart, interval, from_date_or_timestamp) %}

        datetime_add(
            cast( {{ from_date_or_timestamp }} as datetime),
        interval {{ interval }} {{ datepart }}
        )

{% endmacro %}

{#- macros/utils/datediff.sql -#}
{% macro bigquery__datediff(first_date, second_date, datepart) -%}

  {% if dbt_version[0] == 1 and dbt_version[2] >= 2 %}
    {{ return(dbt.datediff(first_date, second_date, datepart)) }}
  {% else %}

    datetime_diff(
        cast({{second_date}} as datetime),
        cast({{first_date}} as datetime),
        {{datepart}}
    )

  {% endif %}

{%- endmacro %}

{#- macros/utils/escape_single_quotes.sql -#}
{% macro bigquery__escape_single_quotes(expression) -%}
{{ expression | replace("'", "\\'") }}
{%- endmacro %}

{#- macros/utils/except.sql -#}
{% macro bigquery__except() %}

    except distinct

{% endmacro %}

{#- macros/utils/hash.sql -#}
{% macro bigquery__hash(field) -%}
    to_hex({{dbt.default__hash(field)}})
{%- endmacro %}

{#- macros/utils/intersect.sql -#}
{% macro bigquery__intersect() %}

    intersect distinct

{% endmacro %}

{#- macros/utils/listagg.sql -#}
{% macro bigquery__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}

    string_agg(
        {{ measure }},
        {{ delimiter_text }}
        {% if order_by_clause -%}
        {{ order_by_clause }}
        {%- endif %}
        {% if limit_num -%}
        limit {{ limit_num }}
        {%- endif %}
        )

{%- endmacro %}

{#- macros/utils/position.sql -#}
{% macro bigquery__position(substring_text, string_text) %}

    strpos(
        {{ string_text }},
        {{ substring_text }}

    )

{%- endmacro -%}

{#- macros/utils/right.sql -#}
{% macro bigquery__right(string_text, length_expression) %}

    case when {{ length_expression }} = 0
        then ''
    else
        substr(
            {{ string_text }},
            -1 * ({{ length_expression }})
        )
    end

{%- endmacro -%}

{#- macros/utils/safe_cast.sql -#}
{% macro bigquery__safe_cast(field, type) %}
    safe_cast({{field}} as {{type}})
{% endmacro %}

{#- macros/utils/split_part.sql -#}
{% macro bigquery__split_part(string_text, delimiter_text, part_number) %}

  {% if part_number >= 0 %}
    split(
        {{ string_text }},
        {{ delimiter_text }}
        )[safe_offset({{ part_number - 1 }})]
  {% else %}
    split(
        {{ string_text }},
        {{ delimiter_text }}
        )[safe_offset(
          length({{ string_text }})
          - length(
              replace({{ string_text }},  {{ delimiter_text }}, '')
          ) + 1 + {{ part_number }}
        )]
  {% endif %}

{% endmacro %}

{#- macros/utils/timestamps.sql -#}
{% macro bigquery__current_timestamp() -%}
  current_timestamp()
{%- endmacro %}


{% macro bigquery__current_timestamp_backcompat() -%}
  current_timestamp
{%- endmacro %}
