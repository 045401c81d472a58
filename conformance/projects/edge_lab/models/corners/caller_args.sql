select
    {{ edge_columns(['a', 'b', 'c']) }},
    '{% call(v) edge_forward(['x', 'y']) %}<{{ v }}>{% endcall %}' as forwarded,
    '{% call(label, value) edge_kw_caller() %}{{ label }}={{ value }}{% endcall %}' as kw,
    '{% call(v) edge_via_argument([1, 2]) %}[{{ v }}]{% endcall %}' as via_argument
