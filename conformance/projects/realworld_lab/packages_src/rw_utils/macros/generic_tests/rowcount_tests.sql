{#- dbt_utils style: the generic test dispatches, and the implementation sets the config
    (fail_calc) before it returns early at parse time -#}
{% test rw_equal_rowcount(model, compare_model) %}
  {{ return(adapter.dispatch('test_rw_equal_rowcount', 'rw_utils')(model, compare_model)) }}
{% endtest %}

{% macro default__test_rw_equal_rowcount(model, compare_model) %}
{{ config(fail_calc = 'sum(coalesce(diff_count, 0))') }}
{%- if not execute -%}
    {{ return('') }}
{% endif %}
select abs((select count(*) from {{ model }}) - (select count(*) from {{ compare_model }})) as diff_count
{% endmacro %}

{#- elementary style: one generic test calls another; each sets tags, so dbt's config has
    them twice -#}
{% test rw_volume_check(model) %}
  {{ config(tags = ['rw-checks']) }}
  {{ rw_utils.test_rw_table_check(model=model, kind='volume') }}
{% endtest %}

{% test rw_table_check(model, kind) %}
  {{ config(tags = ['rw-checks'], fail_calc = 'count(*) * 2') }}
  select '{{ kind }}' as kind from {{ model }} where false
{% endtest %}
