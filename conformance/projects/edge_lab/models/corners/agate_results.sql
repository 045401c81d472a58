{#- agate-like results of an offline query (no rows; the query's columns) -#}
{%- set res = run_query("select 1 as a, 'x' as b where 1 = 0") -%}
{%- set summary = [] -%}
{%- if execute -%}
    {%- for name, column in res.columns.items() -%}
        {%- do summary.append(name ~ ':' ~ (column.values() | length)) -%}
    {%- endfor -%}
    {%- set n_rows = res.rows | length -%}
    {%- set names = res.column_names | join(',') -%}
    {%- set keys = res.columns.keys() | join(',') -%}
{%- else -%}
    {%- set n_rows = -1 -%}
    {%- set names = '' -%}
    {%- set keys = '' -%}
{%- endif %}
select
    '{{ summary | join(",") }}' as summary,
    {{ n_rows }} as n_rows,
    '{{ names }}' as names,
    '{{ keys }}' as keys
