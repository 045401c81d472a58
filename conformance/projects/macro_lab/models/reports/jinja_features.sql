{#- Jinja filters, tests and Python methods that real projects lean on. -#}
{%- set cols = [{'name': 'id', 'type': 'int', 'pk': true}, {'name': 'Email', 'type': 'text'}, {'name': 'created_at', 'type': 'timestamp'}] -%}
{%- set names = cols | map(attribute='name') | map('lower') | list -%}
{%- set pks = cols | selectattr('pk', 'defined') | map(attribute='name') | list -%}
{%- set non_pk = cols | rejectattr('pk', 'defined') | list -%}
{%- set d = {'b': 2, 'a': 1} -%}
{%- do d.update({'c': 3}) -%}
{%- set popped = d.pop('b') -%}
{%- set xs = [3, 1, 2, 3] -%}
{%- do xs.extend([5]) -%}
{%- set ns = namespace(found=false, first=none) -%}
{%- for c in cols -%}
    {%- if c.name.startswith('created') -%}{%- set ns.found = true -%}{%- endif -%}
    {%- if loop.first -%}{%- set ns.first = c.name -%}{%- endif -%}
{%- endfor -%}
{%- set cfg = fromyaml('a: 1\nb: [x, y]\n') -%}
select
    '{{ names | join(",") }}' as names,
    '{{ pks | first }}' as pk,
    {{ non_pk | length }} as n_non_pk,
    '{{ d | dictsort | map("join", "=") | join("&") }}' as dict_sorted,
    {{ popped }} as popped,
    '{{ d.keys() | list | sort | join("") }}' as keys,
    {{ xs | sum }} as xs_sum,
    {{ xs | max }} as xs_max,
    '{{ xs | unique | list | sort | join("-") }}' as xs_unique,
    {{ xs.index(2) }} as idx_of_2,
    {{ (2 in xs) | lower }} as has_2,
    '{{ ns.found }}|{{ ns.first }}' as ns_values,
    '{{ "snake_case_name".split("_") | map("title") | join("") }}' as camel,
    '{{ "Hello {}".format("dbt") }}' as py_format,
    '{{ "a-b-c".replace("-", "+") }}' as py_replace,
    '{{ "  x ".strip() ~ "|" ~ "abc".endswith("c") }}' as py_strip,
    '{{ "%.2f" | format(3.14159) }}' as fmt_float,
    {{ 7 // 2 }} as floor_div,
    {{ 7 % 3 }} as modulo,
    {{ 2 ** 5 }} as power,
    {{ (10 / 4) | round(1) }} as rounded,
    '{{ none | default("fallback") }}' as default_none,
    '{{ "" | default("empty-default", true) }}' as default_empty,
    '{{ [1, 2] is iterable }}|{{ {} is mapping }}|{{ "s" is string }}|{{ 1 is number }}' as tests,
    '{{ modules.re.sub("[^a-z]", "_", "a.b-c") }}' as re_sub,
    '{{ cfg.b | join("/") }}|{{ cfg.a }}' as from_yaml,
    '{{ toyaml({"k": [1, 2]}) | trim | replace("\n", " ") }}' as to_yaml,
    '{{ tojson({"z": 1, "a": [true, none]}) }}' as to_json,
    '{{ range(1, 10, 3) | list | join(",") }}' as ranges,
    '{{ [3, 1, 2] | sort(reverse=true) | join("") }}' as sorted_desc,
    '{{ cols | sort(attribute="name") | map(attribute="name") | join(",") }}' as sorted_by_attr,
    '{{ "abc" | upper | truncate(2, true, "") }}' as truncated,
    '{{ {"k": "v"}.items() | list | length }}' as n_items,
    '{% raw %}{{ not rendered }}{% endraw %}' as raw_block
