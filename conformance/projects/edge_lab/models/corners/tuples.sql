{%- set t = (1, 2) -%}
{%- set names = ('a', 'b') -%}
{%- set nested = [1, (2, 3)] -%}
select *
from (select 1 as n, 'a' as s) q
where n in {{ (1, 2) }}
  and s in {{ names }}
  and n in {{ t }}
  and '{{ (1,) }}' = '(1,)'
  and '{{ () }}' = '()'
  and '{{ nested }}' <> ''
  and '{{ t | list }}' <> ''
  and '{{ t[0] }}{{ t | length }}{{ t | join("-") }}' <> ''
  and '{{ edge_tuple() }}' <> ''
  and '{{ t ~ "" }}' <> ''
  and '{{ {"k": (1, 'x')} }}' <> ''
  and '{{ (1, 2) == (1, 2) }}' <> ''
  and '{{ dict(a=(1, 2)).a }}' <> ''
  {%- for a, b in [(1, 'x'), (2, 'y')] %}
  and '{{ a }}{{ b }}' <> ''
  {%- endfor %}
