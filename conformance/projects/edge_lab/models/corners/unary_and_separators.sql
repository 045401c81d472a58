{#- unary plus, and U+2029 (PARAGRAPH SEPARATOR) used as whitespace inside tags -#}
{%- set x = +3 -%}
{%- set y = -(+2) -%}
{%- set z = 4 -%}
select
    {{ x }} as x,
    {{ y }} as y,
    {{ +x + +1 }} as plus_plus,
    {{ - -x }} as minus_minus,
    {{ +1.5 }} as plus_float,
    {{ z }} as z,
    {{ z * 2 }} as z2
