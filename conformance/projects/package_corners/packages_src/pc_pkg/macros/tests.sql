{# dbt_utils equality-style: the fail_calc is built in a set block, then set by config() #}
{% test pc_rows_match(model, compare_model) %}
  {{ return(adapter.dispatch('test_pc_rows_match', 'pc_pkg')(model, compare_model)) }}
{% endtest %}

{% macro default__test_pc_rows_match(model, compare_model) %}
{% set set_diff %}
    count(*) + coalesce(abs(
        sum(case when which_diff = 'a_minus_b' then 1 else 0 end) -
        sum(case when which_diff = 'b_minus_a' then 1 else 0 end)
    ), 0)
{% endset %}
{#-- needs to be set at parse time, before the early return below --#}
{{ config(fail_calc = set_diff) }}
{%- if not execute -%}
    {{ return('') }}
{% endif %}
with a as (select * from {{ model }}), b as (select * from {{ compare_model }})
select 'a_minus_b' as which_diff from a
{% endmacro %}

{# dbt_utils expression_is_true-style #}
{% test pc_expression_is_true(model, expression, column_name=None) %}
select * from {{ model }}
{% if column_name is none %}
where not({{ expression }})
{%- else %}
where not({{ column_name }} {{ expression }})
{%- endif %}
{% endtest %}
