{%- set fmt = "%s_%s" -%}
{%- set one = "id_%s" -%}
{%- set n = 7 -%}
{%- set named = "%(a)s-%(b)05.1f" -%}
select
    '{{ fmt % ('a', 'b') }}' as two,
    '{{ one % 'x' }}' as one,
    '{{ one % 42 }}' as number,
    '{{ var('edge_fmt') % ('v', 1) }}' as from_var,
    '{{ edge_format('%d items', 3) }}' as from_macro,
    '{{ edge_format('%s/%s', ('l', 'm')) }}' as from_macro_tuple,
    '{{ named % {'a': 'z', 'b': 2.25} }}' as named,
    '{{ ("pre_" ~ "%s") % 'post' }}' as concat_left,
    {{ n % 3 }} as modulo,
    {{ 10 % n }} as modulo_right,
    '{{ "%-5s|%5s|%x|%o|%e|%r" % ('l', 'r', 255, 8, 1234.5, 'q') }}' as flags,
    '{{ "100%%" % () }}' as literal_percent
