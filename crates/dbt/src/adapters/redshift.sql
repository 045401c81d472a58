{#- dbt-redshift 1.7.7's own macros (package dbt_redshift) where dbt's output depends on them: the
    adapter's variants of dbt's cross-database and built-in macros, copied from the package. -#}

{#- macros/timestamps.sql -#}
{% macro redshift__current_timestamp() -%}
    getdate()
{%- endmacro %}

{#- macros/utils/array_append.sql -#}
{% macro redshift__array_append(array, new_element) -%}
    {{ array_concat(array, array_construct([new_element])) }}
{%- endmacro %}

{#- macros/utils/array_concat.sql -#}
{% macro redshift__array_concat(array_1, array_2) -%}
    array_concat({{ array_1 }}, {{ array_2 }})
{%- endmacro %}

{#- macros/utils/array_construct.sql -#}
{% macro redshift__array_construct(inputs, data_type) -%}
    array( {{ inputs|join(' , ') }} )
{%- endmacro %}

{#- macros/utils/cast_bool_to_text.sql -#}
{% macro redshift__cast_bool_to_text(field) %}
    case
        when {{ field }} is true then 'true'
        when {{ field }} is false then 'false'
    end::text
{% endmacro %}

{#- macros/utils/dateadd.sql -#}
{% macro redshift__dateadd(datepart, interval, from_date_or_timestamp) %}

    dateadd(
        {{ datepart }},
        {{ interval }},
        {{ from_date_or_timestamp }}
        )

{% endmacro %}

{#- macros/utils/datediff.sql -#}
{% macro redshift__datediff(first_date, second_date, datepart) -%}

    datediff(
        {{ datepart }},
        {{ first_date }},
        {{ second_date }}
        )

{%- endmacro %}

{#- macros/utils/last_day.sql -#}
{% macro redshift__last_day(date, datepart) %}
    cast(
        {{dbt.dateadd('day', '-1',
        dbt.dateadd(datepart, '1', dbt.date_trunc(datepart, date))
        )}}
        as date)
{% endmacro %}

{#- macros/utils/length.sql -#}
{% macro redshift__length(expression) %}

    len(
        {{ expression }}
    )

{%- endmacro -%}

{#- macros/utils/listagg.sql -#}
{% macro redshift__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}

    {% if limit_num -%}
    {% set ns = namespace() %}
    {% set ns.delimiter_text_regex = delimiter_text|trim("'") %}
    {% set special_chars %}\,^,$,.,|,?,*,+,(,),[,],{,}{% endset %}
    {%- for char in special_chars.split(',') -%}
        {% set escape_char %}\\{{ char }}{% endset %}
        {% set ns.delimiter_text_regex = ns.delimiter_text_regex|replace(char,escape_char) %}
    {%- endfor -%}

    {% set regex %}'([^{{ ns.delimiter_text_regex }}]+{{ ns.delimiter_text_regex }}){1,{{ limit_num - 1}}}[^{{ ns.delimiter_text_regex }}]+'{% endset %}
    regexp_substr(
        listagg(
            {{ measure }},
            {{ delimiter_text }}
            )
            {% if order_by_clause -%}
            within group ({{ order_by_clause }})
            {%- endif %}
        ,{{ regex }}
        )
    {%- else %}
    listagg(
        {{ measure }},
        {{ delimiter_text }}
        )
        {% if order_by_clause -%}
        within group ({{ order_by_clause }})
        {%- endif %}
    {%- endif %}

{%- endmacro %}

{#- macros/utils/split_part.sql -#}
{% macro redshift__split_part(string_text, delimiter_text, part_number) %}

  {% if part_number >= 0 %}
    {{ dbt.default__split_part(string_text, delimiter_text, part_number) }}
  {% else %}
    {{ dbt._split_part_negative(string_text, delimiter_text, part_number) }}
  {% endif %}

{% endmacro %}


{% macro redshift__current_timestamp_backcompat() -%}
    getdate()
{%- endmacro %}

{% macro redshift__current_timestamp_in_utc_backcompat() -%}
    getdate()
{%- endmacro %}
