{%- set rels = dbt_utils.get_relations_by_pattern('analytics%', 'base_%') -%}
{%- set prefixed = dbt_utils.get_relations_by_prefix('analytics', 'base_') -%}
{%- set filtered = dbt_utils.get_filtered_columns_in_relation(ref('base_orders'), except=['status']) -%}
{%- set results = dbt_utils.get_query_results_as_dict("select 1 as a") -%}
select {{ rels | length }} as n_pattern, {{ prefixed | length }} as n_prefix, {{ filtered | length }} as n_cols,
  {{ dbt_utils.get_single_value("select 1", default="42") }} as single
