{#- Builds a select list from a list of column specs; returns a list (via return()). -#}
{% macro column_specs(prefix, names, cast_to=none) -%}
    {%- set out = [] -%}
    {%- for n in names -%}
        {%- set expr = prefix ~ '.' ~ n -%}
        {%- if cast_to is not none -%}
            {%- set expr = dbt.safe_cast(expr, cast_to) -%}
        {%- endif -%}
        {%- do out.append(expr ~ ' as ' ~ n) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- Varargs and kwargs: select_cols('t', 'a', 'b', upper=true) -#}
{% macro select_cols(alias) -%}
    {%- set cols = [] -%}
    {%- for c in varargs -%}
        {%- do cols.append(alias ~ '.' ~ (c | upper if kwargs.get('upper') else c)) -%}
    {%- endfor -%}
    {{- cols | join(', ') -}}
{%- endmacro %}

{#- Returns a dict; callers read it with .get() / .items(). -#}
{% macro status_map() -%}
    {{ return({'paid': 1, 'open': 2, 'void': 3}) }}
{%- endmacro %}

{% macro decode_status(column) -%}
    case {{ column }}
    {%- for name, code in status_map().items() | sort %}
        when '{{ name }}' then {{ code }}
    {%- endfor %}
        else {{ status_map().get('unknown', -1) }}
    end
{%- endmacro %}

{#- Early return: the text after return() is not rendered. -#}
{% macro money(column, precision=2) -%}
    {%- if precision == 0 -%}
        {{ return('round(' ~ column ~ ')') }}
    {%- endif -%}
    round({{ column }}::numeric, {{ precision }})
{%- endmacro %}
