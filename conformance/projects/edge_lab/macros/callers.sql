{#- caller() with arguments, across macros (macro -> macro -> call block) -#}
{% macro edge_each(items, sep=', ') -%}
    {%- for item in items -%}
        {{ caller(item, loop.index) }}{% if not loop.last %}{{ sep }}{% endif %}
    {%- endfor -%}
{%- endmacro %}

{% macro edge_columns(cols) -%}
    {%- call(col, n) edge_each(cols) -%}
        {{ col }} as c{{ n }}_{{ col }}
    {%- endcall -%}
{%- endmacro %}

{#- a macro that hands its own caller (with arguments) on to another macro's call block;
    inside a call block `caller` is that block's own, so it is saved first -#}
{% macro edge_forward(items) -%}
    {%- set outer = caller -%}
    {%- call(x, i) edge_each(items, sep=' + ') -%}
        {{ outer(x ~ '_' ~ i) }}
    {%- endcall -%}
{%- endmacro %}

{#- a caller passed on as a plain argument -#}
{% macro edge_apply(fn, items) -%}
    {%- for item in items -%}{{ fn(item) }}{%- endfor -%}
{%- endmacro %}

{% macro edge_via_argument(items) -%}
    {{ edge_apply(caller, items) }}
{%- endmacro %}

{% macro edge_kw_caller() -%}
    {{ caller(label='kw', value=3) }}
{%- endmacro %}
