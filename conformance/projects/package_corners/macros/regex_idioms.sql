{# codegen / dbt_project_evaluator-style uses of Python's re #}
{% macro pc_regex_demo() %}
  {%- set re = modules.re -%}
  {%- set text = "select a from {{ ref('x') }} join b" -%}
  {%- set cut = re.sub('(?i)\\bfrom(?=\\s|$)', 'FROM', text) -%}
  {%- set words = re.findall('\\w+(?=\\s)', 'one two three ') -%}
  {%- set m = re.search('JOIN\\s+(\\w+)', text, re.IGNORECASE) -%}
  {%- set m2 = re.match('SELECT', text, flags=re.I) -%}
  {%- set m3 = re.match('a', 'ba') -%}
  {%- set neg = re.sub('x(?!y)', '_', 'xy xz x') -%}
  {%- set behind = re.findall('(?<=\\$)\\d+', 'cost $10 and $25') -%}
  {%- set last = ([3, 1, 2] | sort | list).pop() -%}
  {{ return([last, cut, words, m.group(1), (m2 is not none), (m3 is none), neg, behind, re.IGNORECASE]) }}
{% endmacro %}
