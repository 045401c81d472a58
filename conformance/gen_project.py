#!/usr/bin/env python3
"""Generate a large, realistic dbt project for the benchmark (deterministic, stdlib only).

    gen_project.py --models 3000 --out target/bench/project_3000 [--seed 7]

Shape (per ~150 models, one "domain" such as billing_03):
  models/<domain>/staging/        40%  stg_<domain>__<table>: source() + macros, views
  models/<domain>/intermediate/   30%  int_<domain>__<n>: ref() 1-3 staging models; every
                                       third is ephemeral (config() in SQL)
  models/<domain>/marts/<area>/   30%  fct_/dim_<domain>__<n>: ref() 1-3 intermediate/mart
                                       models (some in an earlier domain), some incremental
                                       with is_incremental()/this
  one YAML property file per folder (descriptions, 5-8 columns with descriptions and data
  types, unique/not_null/accepted_values/relationships tests), a sources file and a docs
  file per domain, ~20 shared macros (dispatch, macros calling macros), dbt_project.yml
  with vars and +config by path (materialized, schema, tags, meta).
  Package-shaped macros: a local package `bench_utils` (packages/bench_utils, installed in
  dbt_packages/ as `dbt deps` would) written like dbt_utils — generate_surrogate_key, star,
  union_relations, pivot, date_spine/generate_series, group_by, all behind adapter.dispatch
  and calling dbt's cross-database macros — called by more than a fifth of the models.
  Per domain also a seed (referenced by staging models), a timestamp snapshot of a source
  (referenced by a mart) and a calendar model built with date_spine.
The same --models and --seed always give byte-identical files.
"""

import argparse
import os
import random
import shutil

DOMAINS = ["billing", "crm", "marketing", "product", "support", "finance", "logistics",
           "hr", "sales", "web", "mobile", "risk", "inventory", "partners", "growth"]
TABLE_WORDS = ["accounts", "invoices", "payments", "orders", "customers", "events", "sessions",
               "tickets", "refunds", "plans", "subscriptions", "shipments", "contacts", "leads",
               "campaigns", "products", "prices", "users", "devices", "transactions"]
STATUSES = ["active", "pending", "closed", "cancelled", "archived"]
AREAS = ["core", "reporting", "exec"]

MACROS = r'''
{% macro cents_to_dollars(column_name, scale=2) -%}
    ({{ column_name }} / 100)::numeric(16, {{ scale }})
{%- endmacro %}

{% macro surrogate_key(fields) -%}
    {{ return(adapter.dispatch('surrogate_key', 'bench_project')(fields)) }}
{%- endmacro %}

{% macro default__surrogate_key(fields) -%}
    {%- set parts = [] -%}
    {%- for f in fields -%}
        {%- do parts.append("coalesce(cast(" ~ f ~ " as " ~ type_text() ~ "), '_null_')") -%}
    {%- endfor -%}
    md5({{ parts | join(" || '-' || ") }})
{%- endmacro %}

{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'bench_project')()) }}
{%- endmacro %}

{% macro default__type_text() -%}varchar{%- endmacro %}
{% macro postgres__type_text() -%}text{%- endmacro %}

{% macro clean_string(column_name) -%}
    nullif(trim(lower({{ column_name }})), '')
{%- endmacro %}

{% macro is_recent(column_name, days=none) -%}
    {{ column_name }} >= current_date - interval '{{ days if days is not none else var("recent_days") }} days'
{%- endmacro %}

{% macro status_case(column_name) -%}
    case
    {%- for s in var('statuses') %}
        when {{ column_name }} = '{{ s }}' then {{ loop.index }}
    {%- endfor %}
        else 0
    end
{%- endmacro %}

{% macro select_columns(alias, columns) -%}
    {%- for c in columns %}
    {{ alias }}.{{ c }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro safe_divide(num, den) -%}
    ({{ num }}) / nullif({{ den }}, 0)
{%- endmacro %}

{% macro incremental_filter(column_name) -%}
    {%- if is_incremental() -%}
    where {{ column_name }} > (select max({{ column_name }}) from {{ this }})
    {%- endif -%}
{%- endmacro %}

{% macro audit_columns() -%}
    current_timestamp as _loaded_at,
    '{{ target.name }}' as _target
{%- endmacro %}

{% macro test_is_non_negative(model, column_name) %}
    select * from {{ model }} where {{ column_name }} < 0
{% endmacro %}

{% macro unused_helper_a(x) -%}{{ x }} + 1{%- endmacro %}
{% macro unused_helper_b(x) -%}{{ unused_helper_a(x) }} * 2{%- endmacro %}
'''


PACKAGE_PROJECT = """name: bench_utils
version: "1.0.0"
config-version: 2
require-dbt-version: [">=1.3.0", "<2.0.0"]
"""

# Written the way dbt_utils writes them: a dispatching entry point, a default__ body, and
# calls into dbt's cross-database macros. Nothing here queries the warehouse except `star`,
# which falls back to `*` when the relation has no known columns (as dbt_utils does).
PACKAGE_MACROS = r"""
{% macro generate_surrogate_key(field_list) -%}
    {{ return(adapter.dispatch('generate_surrogate_key', 'bench_utils')(field_list)) }}
{%- endmacro %}

{% macro default__generate_surrogate_key(field_list) -%}
    {%- set default_null_value = var('surrogate_key_treat_nulls_as_empty_strings', '_bench_utils_null_') -%}
    {%- set fields = [] -%}
    {%- for field in field_list -%}
        {%- do fields.append(
            "coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '" ~ default_null_value ~ "')"
        ) -%}
        {%- if not loop.last %}
            {%- do fields.append("'-'") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro %}

{% macro star(from, relation_alias=none, except=[], prefix='', suffix='', quote_identifiers=true) -%}
    {{ return(adapter.dispatch('star', 'bench_utils')(from, relation_alias, except, prefix, suffix, quote_identifiers)) }}
{%- endmacro %}

{% macro default__star(from, relation_alias=none, except=[], prefix='', suffix='', quote_identifiers=true) -%}
    {%- if not execute -%}
        {% do return('*') %}
    {%- endif -%}
    {%- set cols = bench_utils.get_filtered_columns(from, except) -%}
    {%- if cols | length <= 0 -%}
        {{ return('*') }}
    {%- endif -%}
    {%- for col in cols %}
        {%- if relation_alias %}{{ relation_alias }}.{% endif -%}
        {%- if quote_identifiers -%}{{ adapter.quote(col) | trim }}{%- else -%}{{ col | trim }}{%- endif -%}
        {%- if prefix != '' or suffix != '' %} as {{ adapter.quote(prefix ~ col ~ suffix) | trim }}{%- endif -%}
        {%- if not loop.last %},{{ '\n  ' }}{%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{% macro get_filtered_columns(from, except=[]) -%}
    {%- set lowered = except | map('lower') | list -%}
    {%- set columns = adapter.get_columns_in_relation(from) -%}
    {%- set kept = [] -%}
    {%- for col in columns -%}
        {%- if col.column | lower not in lowered -%}
            {%- do kept.append(col.column) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(kept) }}
{%- endmacro %}

{% macro union_relations(relations, include=[], source_column_name='_bench_source_relation') -%}
    {{ return(adapter.dispatch('union_relations', 'bench_utils')(relations, include, source_column_name)) }}
{%- endmacro %}

{% macro default__union_relations(relations, include=[], source_column_name='_bench_source_relation') -%}
    {%- for relation in relations %}
    (
        select
            cast({{ dbt.string_literal(relation) }} as {{ dbt.type_string() }}) as {{ source_column_name }},
            {% if include | length > 0 -%}
            {%- for col in include %}{{ col }}{{ ", " if not loop.last }}{% endfor %}
            {%- else -%}*{%- endif %}
        from {{ relation }}
    )
    {% if not loop.last -%}
    union all
    {% endif -%}
    {%- endfor -%}
{%- endmacro %}

{% macro pivot(column, values, alias=true, agg='sum', cmp='=', prefix='', suffix='', then_value=1, else_value=0, quote_identifiers=true) -%}
    {{ return(adapter.dispatch('pivot', 'bench_utils')(column, values, alias, agg, cmp, prefix, suffix, then_value, else_value, quote_identifiers)) }}
{%- endmacro %}

{% macro default__pivot(column, values, alias=true, agg='sum', cmp='=', prefix='', suffix='', then_value=1, else_value=0, quote_identifiers=true) -%}
    {%- for value in values %}
      {{ agg }}(
        case
        when {{ column }} {{ cmp }} '{{ dbt.escape_single_quotes(value) }}'
          then {{ then_value }}
        else {{ else_value }}
        end
      )
      {%- if alias -%}
        {%- if quote_identifiers %}
            as {{ adapter.quote(prefix ~ value ~ suffix) }}
        {%- else %}
          as {{ prefix ~ value ~ suffix }}
        {%- endif -%}
      {%- endif -%}
      {%- if not loop.last %},{% endif -%}
    {%- endfor %}
{%- endmacro %}

{% macro generate_series(upper_bound) -%}
    {{ return(adapter.dispatch('generate_series', 'bench_utils')(upper_bound)) }}
{%- endmacro %}

{% macro default__generate_series(upper_bound) -%}
    {%- set n = bench_utils.powers_needed(upper_bound) -%}
    with p as (
        select 0 as generated_number union all select 1
    ), unioned as (
    select
    {% for i in range(n) %}
    p{{i}}.generated_number * power(2, {{i}})
    {% if not loop.last %} + {% endif %}
    {% endfor %}
    + 1
    as generated_number
    from
    {% for i in range(n) %}
    p as p{{i}}
    {% if not loop.last %} cross join {% endif %}
    {% endfor %}
    )
    select *
    from unioned
    where generated_number <= {{ upper_bound }}
    order by generated_number
{%- endmacro %}

{% macro powers_needed(upper_bound) -%}
    {%- set ns = namespace(n=0, v=1) -%}
    {%- for _ in range(64) -%}
        {%- if ns.v < upper_bound -%}
            {%- set ns.v = ns.v * 2 -%}
            {%- set ns.n = ns.n + 1 -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return([ns.n, 1] | max) }}
{%- endmacro %}

{% macro date_spine(datepart, start_date, periods) -%}
    {{ return(adapter.dispatch('date_spine', 'bench_utils')(datepart, start_date, periods)) }}
{%- endmacro %}

{% macro default__date_spine(datepart, start_date, periods) -%}
    with rawdata as (
        {{ bench_utils.generate_series(periods) }}
    ),
    all_periods as (
        select (
            {{ dbt.dateadd(datepart, "row_number() over (order by 1) - 1", start_date) }}
        ) as date_{{ datepart }}
        from rawdata
    )
    select * from all_periods
{%- endmacro %}

{% macro group_by(n) -%}
    {{ return(adapter.dispatch('group_by', 'bench_utils')(n)) }}
{%- endmacro %}

{% macro default__group_by(n) -%}
    group by {% for i in range(1, n + 1) -%}{{ i }}{{ ', ' if not loop.last }}{%- endfor %}
{%- endmacro %}
"""

CALENDAR_MACROS = r"""
{% macro fiscal_quarter(date_column, start_month=2) -%}
    ((extract(month from {{ date_column }})::int + 12 - {{ start_month }}) % 12) / 3 + 1
{%- endmacro %}
"""


def w(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def gen(n_models, out, seed):
    rnd = random.Random(seed)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    n_domains = max(1, round(n_models / 150))
    domains = [f"{DOMAINS[i % len(DOMAINS)]}_{i:02d}" for i in range(n_domains)]
    # distribute models over domains, then layers
    per_domain = [n_models // n_domains + (1 if i < n_models % n_domains else 0) for i in range(n_domains)]

    w(os.path.join(out, "dbt_project.yml"), _project_yml(domains))
    w(os.path.join(out, "profiles.yml"), PROFILES)
    w(os.path.join(out, "macros", "bench_macros.sql"), MACROS.lstrip())
    w(os.path.join(out, "tests", "generic", "test_not_empty_string.sql"),
      "{% test not_empty_string(model, column_name) %}\n"
      "select * from {{ model }} where trim({{ column_name }}) = ''\n{% endtest %}\n")
    w(os.path.join(out, "macros", "calendar_macros.sql"), CALENDAR_MACROS.lstrip())
    # the package: its source under packages/ (what packages.yml names), installed copy in
    # dbt_packages/ (what `dbt deps` leaves; the conformance harness re-installs it)
    w(os.path.join(out, "packages.yml"), "packages:\n  - local: packages/bench_utils\n")
    for root in ("packages", "dbt_packages"):
        w(os.path.join(out, root, "bench_utils", "dbt_project.yml"), PACKAGE_PROJECT)
        w(os.path.join(out, root, "bench_utils", "macros", "bench_utils.sql"), PACKAGE_MACROS.lstrip())

    marts_by_domain = []  # for cross-domain refs
    total = 0
    for di, (dom, count) in enumerate(zip(domains, per_domain)):
        n_stg = max(1, count * 4 // 10)
        n_int = max(1, count * 3 // 10)
        n_mart = count - n_stg - n_int
        base = os.path.join(out, "models", dom)
        seed_name = f"{dom}_country_codes"
        w(os.path.join(out, "seeds", dom, f"{seed_name}.csv"),
          "country_code,country_name,region\n" + "".join(
              f"{c},{n},{r}\n" for c, n, r in [("DE", "Germany", "emea"), ("FR", "France", "emea"),
                                                ("US", "United States", "amer"), ("JP", "Japan", "apac"),
                                                ("BR", "Brazil", "amer")][: 3 + di % 3]))
        # ---- sources + staging ----------------------------------------------------------
        src_tables = []
        stg = []
        yml = ["version: 2", "", "models:"]
        for i in range(n_stg):
            table = f"{TABLE_WORDS[i % len(TABLE_WORDS)]}_{i:03d}"
            src_tables.append(table)
            name = f"stg_{dom}__{table}"
            cols = _columns(rnd, table)
            stg.append((name, cols))
            key_macro = "bench_utils.generate_surrogate_key" if i % 2 == 0 else "surrogate_key"
            seed_line = (f"        (select max(country_name) from {{{{ ref('{seed_name}') }}}}) as default_country,\n"
                         if i % 10 == 3 else "")
            sql = (
                f"with source as (\n"
                f"    select * from {{{{ source('{dom}_raw', '{table}') }}}}\n"
                f"),\n\nrenamed as (\n    select\n"
                f"        id as {cols[0]},\n"
                f"        {{{{ {key_macro}(['id', 'updated_at']) }}}} as {table}_key,\n"
                + seed_line +
                f"        {{{{ clean_string('name') }}}} as name,\n"
                f"        {{{{ status_case('status') }}}} as status_code,\n"
                f"        status,\n"
                f"        {{{{ cents_to_dollars('amount_cents') }}}} as amount,\n"
                f"        created_at,\n        updated_at,\n"
                f"        {{{{ audit_columns() }}}}\n"
                f"    from source\n"
                + ("    where {{ is_recent('updated_at') }}\n" if i % 5 == 0 else "")
                + ")\n\nselect * from renamed\n"
            )
            w(os.path.join(base, "staging", f"{name}.sql"), sql)
            yml += _model_yml(rnd, name, cols, f"Staged {table} from the {dom} system.", [])
        w(os.path.join(base, "staging", f"_{dom}__staging.yml"), "\n".join(yml) + "\n")
        w(os.path.join(base, "staging", f"_{dom}__sources.yml"), _sources_yml(dom, src_tables))
        w(os.path.join(out, "snapshots", dom, f"snap_{dom}__{src_tables[0]}.sql"),
          f"{{% snapshot snap_{dom}__{src_tables[0]} %}}\n"
          "{{\n    config(\n        target_schema='snapshots',\n        unique_key='id',\n"
          "        strategy='timestamp',\n        updated_at='updated_at'\n    )\n}}\n\n"
          f"select * from {{{{ source('{dom}_raw', '{src_tables[0]}') }}}}\n\n"
          "{% endsnapshot %}\n")
        # ---- intermediate ---------------------------------------------------------------
        inter = []
        yml = ["version: 2", "", "models:"]
        for i in range(n_int):
            name = f"int_{dom}__{TABLE_WORDS[(i * 7) % len(TABLE_WORDS)]}_{i:03d}"
            ups = rnd.sample(stg, k=min(len(stg), rnd.randint(1, 3)))
            cols = ups[0][1][:6]
            ephemeral = i % 3 == 0
            body = []
            if ephemeral:
                body.append("{{ config(materialized='ephemeral') }}\n")
            star = (f"{{{{ bench_utils.star(ref('{ups[0][0]}'), except=['status']) }}}}"
                    if i % 3 == 1 else "*")
            body.append(f"with base as (\n    select {star} from {{{{ ref('{ups[0][0]}') }}}}\n)")
            group_by = "{{ bench_utils.group_by(1) }}" if i % 3 == 2 else "group by 1"
            for j, (u, _) in enumerate(ups[1:], 1):
                body.append(f",\n\nj{j} as (\n    select {ups[0][1][0]}, count(*) as n_{j} "
                            f"from {{{{ ref('{u}') }}}} {group_by}\n)")
            body.append("\n\nselect\n    {{ select_columns('base', " + repr(cols) + ") }}")
            for j in range(1, len(ups)):
                body.append(f",\n    coalesce(j{j}.n_{j}, 0) as n_{j}")
            body.append("\nfrom base")
            for j in range(1, len(ups)):
                body.append(f"\nleft join j{j} using ({ups[0][1][0]})")
            w(os.path.join(base, "intermediate", f"{name}.sql"), "".join(body) + "\n")
            inter.append((name, cols))
            yml += _model_yml(rnd, name, cols, f"Intermediate {name} built from {len(ups)} staging models.",
                              [u for u, _ in ups[:1]])
        w(os.path.join(base, "intermediate", f"_{dom}__intermediate.yml"), "\n".join(yml) + "\n")
        # ---- marts ----------------------------------------------------------------------
        marts = []
        ymls = {a: ["version: 2", "", "models:"] for a in AREAS}
        for i in range(n_mart):
            area = AREAS[i % len(AREAS)]
            kind = "fct" if i % 2 == 0 else "dim"
            name = f"{kind}_{dom}__{TABLE_WORDS[(i * 3) % len(TABLE_WORDS)]}_{i:03d}"
            pool = inter + marts
            ups = rnd.sample(pool, k=min(len(pool), rnd.randint(1, 3)))
            if di > 0 and i % 10 == 0 and marts_by_domain[di - 1]:
                ups.append(rnd.choice(marts_by_domain[di - 1]))
            cols = ups[0][1][:5] + ["revenue"]
            incremental = kind == "fct" and i % 4 == 0
            if i == 1:
                # the domain's calendar: a date spine with fiscal quarters
                body = ("with spine as (\n"
                        "    {{ bench_utils.date_spine('day', \"cast('2020-01-01' as date)\", "
                        f"{365 + di}) }}}}\n)\n\n"
                        "select\n    date_day,\n"
                        "    {{ fiscal_quarter('date_day') }} as fiscal_quarter,\n"
                        "    {{ fiscal_quarter('date_day', start_month=7) }} as fiscal_quarter_h2\n"
                        "from spine\n")
                w(os.path.join(base, "marts", area, f"{name}.sql"), body)
                marts.append((name, cols))
                ymls[area] += _model_yml(rnd, name, cols, f"{{{{ doc('{dom}_mart') }}}} (calendar)",
                                         [], doc_col=dom)
                continue
            body = []
            if incremental:
                body.append("{{\n    config(\n        materialized='incremental',\n"
                            f"        unique_key='{cols[0]}',\n        on_schema_change='append_new_columns'\n    )\n}}}}\n\n")
            body.append(f"with primary_input as (\n    select * from {{{{ ref('{ups[0][0]}') }}}}\n)")
            for j, (u, ucols) in enumerate(ups[1:], 1):
                body.append(f",\n\nsecondary_{j} as (\n    select {ucols[0]} as key_{j}, count(*) as cnt "
                            f"from {{{{ ref('{u}') }}}} group by 1\n)")
            pivot = i % 5 == 2
            if pivot:
                body.append(",\n\nstatus_counts as (\n"
                            f"    select {cols[0]},\n"
                            "    {{ bench_utils.pivot('status', var('statuses'), prefix='n_') }}\n"
                            f"    from {{{{ ref('{ups[0][0]}') }}}}\n"
                            "    {{ bench_utils.group_by(1) }}\n)")
            union = i % 7 == 3 and len(ups) >= 2
            if union:
                rels = ", ".join(f"ref('{u}')" for u, _ in ups[:2])
                body.append(",\n\nunioned as (\n"
                            f"    {{{{ bench_utils.union_relations([{rels}], include=['{cols[0]}']) }}}}\n)")
            snap = i % 10 == 5
            body.append("\n\nselect\n")
            body.append("".join(f"    primary_input.{c},\n" for c in cols[:-1]))
            if pivot:
                body.append("    status_counts.n_active,\n")
            if union:
                body.append("    (select count(*) from unioned) as n_unioned,\n")
            if snap:
                body.append("    snap.dbt_valid_from as first_seen_at,\n")
            body.append("    {{ safe_divide('primary_input.amount', '100') }} as revenue")
            for j in range(1, len(ups)):
                body.append(f",\n    secondary_{j}.cnt as cnt_{j}")
            body.append("\nfrom primary_input")
            if pivot:
                body.append(f"\nleft join status_counts using ({cols[0]})")
            if snap:
                body.append(f"\nleft join {{{{ ref('snap_{dom}__{src_tables[0]}') }}}} as snap "
                            f"on snap.id = primary_input.{cols[0]} and snap.dbt_valid_to is null")
            for j in range(1, len(ups)):
                body.append(f"\nleft join secondary_{j} on secondary_{j}.key_{j} = primary_input.{cols[0]}")
            if incremental:
                body.append("\n{{ incremental_filter('updated_at') }}")
            w(os.path.join(base, "marts", area, f"{name}.sql"), "".join(body) + "\n")
            marts.append((name, cols))
            ymls[area] += _model_yml(rnd, name, cols, f"{{{{ doc('{dom}_mart') }}}} ({kind}, {area})",
                                     [u for u, _ in ups[:1]], doc_col=dom)
        for area, y in ymls.items():
            if len(y) > 3:
                w(os.path.join(base, "marts", area, f"_{dom}__{area}.yml"), "\n".join(y) + "\n")
        w(os.path.join(base, "docs.md"),
          f"{{% docs {dom}_mart %}}\nA curated {dom} mart. Owned by the {dom} team;\n"
          f"refreshed hourly.\n{{% enddocs %}}\n\n"
          f"{{% docs {dom}_id %}}\nPrimary key of the entity in the {dom} system.\n{{% enddocs %}}\n")
        marts_by_domain.append(marts)
        total += n_stg + n_int + n_mart
    assert total == n_models, (total, n_models)
    return total


def _columns(rnd, table):
    extra = rnd.sample(["name", "status", "amount", "created_at", "updated_at", "country", "email", "channel"],
                       k=rnd.randint(3, 6))
    return [f"{table}_id"] + [c for c in ["name", "status", "amount", "created_at", "updated_at"]] + \
        [c for c in extra if c not in ("name", "status", "amount", "created_at", "updated_at")]


def _model_yml(rnd, name, cols, description, upstream, doc_col=None):
    out = [f"  - name: {name}", f"    description: \"{description}\""]
    if rnd.random() < 0.2:
        out += ["    config:", f"      tags: [\"{rnd.choice(['daily', 'hourly', 'pii'])}\"]",
                "      meta:", f"        owner: team_{rnd.randint(1, 9)}", "        contains_pii: no"]
    out.append("    columns:")
    for i, c in enumerate(cols):
        out.append(f"      - name: {c}")
        if i == 0 and doc_col:
            out.append(f"        description: '{{{{ doc(\"{doc_col}_id\") }}}}'")
        else:
            out.append(f"        description: The {c.replace('_', ' ')} of the record.")
        if c.endswith("_at"):
            out.append("        data_type: timestamp")
        elif c == "amount":
            out.append("        data_type: numeric(16,2)")
        if i == 0:
            out += ["        tests:", "          - unique", "          - not_null"]
        elif c == "status" and rnd.random() < 0.5:
            out += ["        tests:", "          - accepted_values:",
                    f"              values: {STATUSES!r}"]
        elif c == "amount" and rnd.random() < 0.3:
            out += ["        tests:", "          - is_non_negative"]
        elif c == "name" and rnd.random() < 0.2:
            out += ["        tests:", "          - not_empty_string"]
    if upstream and rnd.random() < 0.3:
        out += [f"      - name: {cols[0]}_ref", "        tests:", "          - relationships:",
                f"              to: ref('{upstream[0]}')", f"              field: {cols[0]}"]
    return out


def _sources_yml(dom, tables):
    out = ["version: 2", "", "sources:", f"  - name: {dom}_raw",
           f"    schema: raw_{dom}", "    loader: fivetran", "    loaded_at_field: _fivetran_synced",
           "    freshness:", "      warn_after: {count: 24, period: hour}", "    tables:"]
    for t in tables:
        out.append(f"      - name: {t}")
        if t.endswith("0"):
            out.append(f"        identifier: {t.upper()}")
            out += ["        quoting:", "          identifier: true"]
        out += ["        columns:", "          - name: id", "            tests: [not_null]"]
    return "\n".join(out) + "\n"


def _project_yml(domains):
    lines = [
        "# generated by conformance/gen_project.py (benchmark project; do not edit)",
        "name: bench_project", 'version: "1.0.0"', "config-version: 2", "profile: bench_project",
        "", "dispatch:", "  - macro_namespace: bench_utils",
        "    search_order: ['bench_project', 'bench_utils']",
        "", "vars:", "  recent_days: 30", f"  statuses: {STATUSES!r}", "",
        "models:", "  bench_project:", "    +materialized: view",
        "    +meta:", "      generated: true",
    ]
    for d in domains:
        lines += [f"    {d}:", f"      +schema: {d}", f"      +tags: [\"{d.rsplit('_', 1)[0]}\"]",
                  "      staging:", "        +materialized: view",
                  "      intermediate:", "        +materialized: view",
                  "      marts:", "        +materialized: table",
                  "        exec:", "          +tags: [\"exec\"]"]
    return "\n".join(lines) + "\n"


PROFILES = """bench_project:
  target: dev
  outputs:
    dev:
      type: postgres
      host: 127.0.0.1
      port: 5432
      user: postgres
      password: ""
      dbname: warehouse
      schema: analytics
      threads: 4
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=3000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    n = gen(a.models, a.out, a.seed)
    print(f"generated {n} models in {a.out}")


if __name__ == "__main__":
    main()
