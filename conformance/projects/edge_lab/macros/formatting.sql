{% macro edge_format(fmt, values) -%}
    {{ return(fmt % values) }}
{%- endmacro %}

{% macro edge_tuple() -%}
    {{ return(('p', 'q')) }}
{%- endmacro %}
