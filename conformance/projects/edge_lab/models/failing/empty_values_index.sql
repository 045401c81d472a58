{#- `[0]` of an empty column's values is undefined: it renders as nothing -#}
{%- set res = run_query("select 1 as a where 1 = 0") -%}
{%- set first = res.columns[0].values()[0] if execute else none -%}
select '{{ first }}' as first, '{{ first is defined }}' as is_defined, '{{ first is none }}' as is_none
