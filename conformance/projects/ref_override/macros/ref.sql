{# drop the database part of every ref in development; keep versions and packages working #}
{% macro ref() %}
  {%- set rel = builtins.ref(*varargs, **kwargs) -%}
  {%- if target.name == 'dev' and rel is not none and rel.include is defined -%}
    {%- do return(rel.include(database=false)) -%}
  {%- endif -%}
  {%- do return(rel) -%}
{% endmacro %}
