{#- `rows[0]` of an empty agate result is undefined (Jinja's getitem swallows the IndexError);
    indexing that undefined raises, so the node fails -#}
{%- set res = run_query("select 1 as a, 'x' as b where 1 = 0") -%}
{%- if execute -%}
    {%- set first = res.rows[0]['a'] -%}
{%- endif %}
select 1 as id
