{# sources read from a schema chosen per target #}
{% macro source(source_name, table_name) %}
  {%- set rel = builtins.source(source_name, table_name) -%}
  {%- do return(rel.include(database=false)) -%}
{% endmacro %}
