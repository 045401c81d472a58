{%- set res = run_query("select 1 as a where 1 = 0") -%}
{%- set first = res.columns[0][0] if execute else none -%}
{%- set first_row = res.rows[0] if execute else none -%}
select '{{ first }}' as first, '{{ first is defined }}' as is_defined, '{{ first_row is defined }}' as row_defined
