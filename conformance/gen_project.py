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

    marts_by_domain = []  # for cross-domain refs
    total = 0
    for di, (dom, count) in enumerate(zip(domains, per_domain)):
        n_stg = max(1, count * 4 // 10)
        n_int = max(1, count * 3 // 10)
        n_mart = count - n_stg - n_int
        base = os.path.join(out, "models", dom)
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
            sql = (
                f"with source as (\n"
                f"    select * from {{{{ source('{dom}_raw', '{table}') }}}}\n"
                f"),\n\nrenamed as (\n    select\n"
                f"        id as {cols[0]},\n"
                f"        {{{{ surrogate_key(['id', 'updated_at']) }}}} as {table}_key,\n"
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
            body.append(f"with base as (\n    select * from {{{{ ref('{ups[0][0]}') }}}}\n)")
            for j, (u, _) in enumerate(ups[1:], 1):
                body.append(f",\n\nj{j} as (\n    select {ups[0][1][0]}, count(*) as n_{j} "
                            f"from {{{{ ref('{u}') }}}} group by 1\n)")
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
            body = []
            if incremental:
                body.append("{{\n    config(\n        materialized='incremental',\n"
                            f"        unique_key='{cols[0]}',\n        on_schema_change='append_new_columns'\n    )\n}}}}\n\n")
            body.append(f"with primary_input as (\n    select * from {{{{ ref('{ups[0][0]}') }}}}\n)")
            for j, (u, ucols) in enumerate(ups[1:], 1):
                body.append(f",\n\nsecondary_{j} as (\n    select {ucols[0]} as key_{j}, count(*) as cnt "
                            f"from {{{{ ref('{u}') }}}} group by 1\n)")
            body.append("\n\nselect\n")
            body.append("".join(f"    primary_input.{c},\n" for c in cols[:-1]))
            body.append("    {{ safe_divide('primary_input.amount', '100') }} as revenue")
            for j in range(1, len(ups)):
                body.append(f",\n    secondary_{j}.cnt as cnt_{j}")
            body.append("\nfrom primary_input")
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
