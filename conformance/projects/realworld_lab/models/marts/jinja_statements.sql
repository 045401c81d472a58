{#- Jinja statements from packages: `do` with a conditional expression (dbt_external_tables),
    `in(...)` with no space (dbt_constraints), a statement's result by name
    (dbt_utils.get_query_results_as_dict), a relation's information schema (audit_helper) -#}
{%- set seen = [] -%}
{%- do seen.append('first') if seen == [] -%}
{%- do seen.append('second') if seen == [] -%}
{%- set mode = 'RELY' -%}
{%- call statement('rw_named', fetch_result=True, auto_begin=false) -%}
    select 1 as code, 'x' as label where 1 = 0
{%- endcall -%}
{%- set named = load_result('rw_named') -%}
{%- set cols = [] -%}
{%- if execute -%}
  {%- for column_name, column in named.table.columns.items() -%}
    {%- do cols.append(column_name ~ ':' ~ (column.values() | length)) -%}
  {%- endfor -%}
{%- endif -%}
select
  '{{ seen | join(",") }}' as seen,
  {{ mode in('RELY', 'NORELY') }} as rely_known,
  {{ 'X' in('RELY', 'NORELY') }} as x_known,
  '{{ cols | join(",") }}' as statement_columns,
  '{{ ref("stg_orders").information_schema("columns") }}' as info_schema_columns,
  '{{ ref("stg_orders").information_schema() }}' as info_schema
