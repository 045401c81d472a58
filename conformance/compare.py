#!/usr/bin/env python3
"""Compare Backflow's `backflow-dbt parse` JSON with dbt's target/manifest.json.

Stdlib only. Usage:
    compare.py --index target/conformance/index.json      (written by harness.py)
    compare.py --pair NAME DBT_MANIFEST BACKFLOW_JSON      (repeatable)

What is compared, node by node (keyed by unique_id):
  models   name, package_name, original_file_path, fqn, database, schema, alias,
           relation_name, config.materialized, enabled, tags (ordered), meta,
           description, columns (ordered names; description, data_type, meta, tags,
           constraints, quote),
           depends_on.nodes, depends_on.macros, checksum, version, latest_version,
           access, group, contract.enforced, docs, config (every key dbt writes, incl.
           hooks, persist_docs, grants, custom keys), raw_code, compiled_code
  sources  source_name, name, identifier, database, schema, relation_name, loader,
           loaded_at_field, tags, meta, description, columns, enabled, original_file_path
  tests    name, alias, attached_node, column_name, test_metadata (name, namespace, kwargs),
           depends_on.nodes, depends_on.macros, config (severity, where, ...), tags,
           original_file_path, compiled_code (the test query dbt compiles)
  seeds    name, database, schema, alias, relation_name, tags, meta, description, columns, checksum
  snapshots  relation fields, tags, meta, depends_on, checksum, raw_code, compiled_code
  (analyses are not compared)
  disabled the set of unique_ids dbt lists under `disabled` (each id is one check)

Choices:
  * depends_on.nodes / depends_on.macros are compared as sets (dbt's order is the
    order of discovery while rendering, not meaningful). ALL macro ids are compared,
    including dbt's built-ins (`macro.dbt.is_incremental`, `macro.dbt.test_unique`, ...),
    because dbt records them and acceptance point 1 compares them too. Pass
    --ignore-builtin-macros to drop `macro.dbt.*` / `macro.dbt_postgres.*` from both sides
    when diagnosing.
  * tags keep their order (dbt's order is deterministic: project path levels, then YAML,
    then config() in SQL).
  * compiled_code is compared after stripping trailing whitespace of the whole text
    (the rule of shared/fixtures/dbt/EXPECTED-FORMAT.md); raw_code exactly.
  * `config` is compared key by key, every key dbt writes (so hooks, persist_docs, grants,
    docs, custom keys ...), except that a key whose value is null counts as absent.
  * A node missing on either side counts as one mismatching node.
  * status: for projects that fail on purpose (conformance.json `dbt_node_errors`) the
    expected output also has dbt's run results; each node's status (success / error /
    skipped, and whether a skip has a reason: a failed ephemeral upstream) is compared with
    Backflow's `backflow.compile_status` / `compile_error`.

With an index written for several adapters, the closing lines are a project x adapter table
(matching / compared nodes per cell). Expected outputs may be gzipped (`.json.gz`).

Exit status 0 only when every compared node matches (100%), in every cell.
"""

import argparse
import difflib
import gzip
import json
import sys

BUILTIN_MACRO_PREFIXES = ("macro.dbt.", "macro.dbt_postgres.", "macro.dbt_redshift.",
                          "macro.dbt_snowflake.", "macro.dbt_bigquery.", "macro.dbt_spark.",
                          "macro.dbt_databricks.")
FIELD_MISMATCHES = {}  # field -> number of nodes where it differs (all projects)

MODEL_FIELDS = [
    "name", "package_name", "original_file_path", "fqn", "database", "schema", "alias",
    "relation_name", "config.materialized", "enabled", "tags", "meta", "description",
    "columns", "depends_on.nodes", "depends_on.macros", "checksum", "version",
    "latest_version", "access", "group", "contract.enforced", "docs", "config", "raw_code",
    "compiled_code",
]
SOURCE_FIELDS = [
    "source_name", "name", "identifier", "database", "schema", "relation_name", "loader",
    "loaded_at_field", "tags", "meta", "description", "columns", "enabled",
    "original_file_path",
]
TEST_FIELDS = [
    "name", "alias", "attached_node", "column_name", "test_metadata", "depends_on.nodes",
    "depends_on.macros", "config.severity", "tags", "config", "original_file_path",
    "compiled_code",
]
SEED_FIELDS = [
    "name", "package_name", "original_file_path", "database", "schema", "alias",
    "relation_name", "tags", "meta", "description", "columns", "checksum", "config",
]
SNAPSHOT_FIELDS = [
    "name", "package_name", "original_file_path", "database", "schema", "alias",
    "relation_name", "tags", "meta", "depends_on.nodes", "depends_on.macros", "checksum",
    "config", "raw_code", "compiled_code",
]
KINDS = {"model": MODEL_FIELDS, "test": TEST_FIELDS, "seed": SEED_FIELDS, "snapshot": SNAPSHOT_FIELDS}
_MISSING = object()


def get(node, path):
    """Read a dotted field with the fallbacks a manifest-shaped output may use."""
    if path == "enabled":
        v = get(node, "config.enabled")
        return v if v is not _MISSING else node.get("enabled", _MISSING)
    if path == "contract.enforced":
        v = node.get("contract", {})
        if isinstance(v, dict) and "enforced" in v:
            return v["enforced"]
        return get(node, "config.contract.enforced")
    cur = node
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if path == "config.materialized" and "materialized" in node:
                return node["materialized"]
            return _MISSING
        cur = cur[part]
    return cur


def norm_columns(cols):
    """dbt: {name: {...}} in YAML order; accept a list of column objects too."""
    if cols is _MISSING or cols is None:
        return []
    items = list(cols.values()) if isinstance(cols, dict) else list(cols)
    out = []
    for c in items:
        if isinstance(c, str):
            c = {"name": c}
        out.append({
            "name": c.get("name"),
            "description": c.get("description", ""),
            "data_type": c.get("data_type"),
            "meta": c.get("meta", {}),
            "tags": c.get("tags", []),
            "constraints": c.get("constraints", []),
            "quote": c.get("quote"),
        })
    return out


def norm(field, value, kind, opts):
    if value is _MISSING:
        return value
    if field == "columns":
        cols = norm_columns(value)
        if kind == "source":  # dbt's source entries carry only names in expected.json
            return [{"name": c["name"], "description": c["description"], "data_type": c["data_type"]} for c in cols]
        return cols
    if field == "checksum":
        return value.get("checksum") if isinstance(value, dict) else value
    if field in ("depends_on.nodes", "depends_on.macros"):
        vals = value or []
        if field == "depends_on.macros" and opts.ignore_builtin_macros:
            vals = [m for m in vals if not m.startswith(BUILTIN_MACRO_PREFIXES)]
        return sorted(set(vals))
    if field == "compiled_code":
        return value.rstrip() if isinstance(value, str) else value
    if field in ("config", "docs") and isinstance(value, dict):
        # a key dbt writes as null may be absent in Backflow's output (and vice versa)
        return {k: v for k, v in value.items() if v is not None}
    if field == "test_metadata" and isinstance(value, dict):
        return {"name": value.get("name"), "namespace": value.get("namespace"),
                "kwargs": value.get("kwargs", {})}
    if field == "version" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value  # dbt keeps the YAML type (int 1 vs str "1")
    return value


def show(v, limit=300):
    if v is _MISSING:
        return "<missing>"
    s = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def field_diff(field, exp, got):
    if field in ("compiled_code", "raw_code") and isinstance(exp, str) and isinstance(got, str):
        lines = difflib.unified_diff(exp.splitlines(), got.splitlines(), "dbt", "backflow", lineterm="", n=1)
        body = "\n".join("        " + ln for ln in lines)
        if "\r" in exp + got and exp.replace("\r\n", "\n") == got.replace("\r\n", "\n"):
            crlf = lambda t: "CRLF" if "\r\n" in t else "LF"
            return f"    {field}: differs only in line endings: expected {crlf(exp)}, got {crlf(got)}"
        if not body.strip() and exp.splitlines() != got.splitlines():
            body = "        (differs only in whitespace/line endings)"
        elif exp.splitlines() == got.splitlines():
            body = (f"        same lines, different ends: expected ...{json.dumps(exp[-12:])}, "
                    f"got ...{json.dumps(got[-12:])}")
        return f"    {field}:\n{body}"
    if field in ("config", "docs") and isinstance(exp, dict) and isinstance(got, dict):
        out = [f"    {field}:"]
        for k in list(exp) + [k for k in got if k not in exp]:
            e, g = exp.get(k, _MISSING), got.get(k, _MISSING)
            if e != g:
                out.append(f"        {k}: expected {show(e)}, got {show(g)}")
        return "\n".join(out)
    if field == "columns" and isinstance(exp, list) and isinstance(got, list):
        out = [f"    columns:"]
        en, gn = [c["name"] for c in exp], [c["name"] for c in got]
        if en != gn:
            out.append(f"        names: expected {en}, got {gn}")
        g = {c["name"]: c for c in got}
        for c in exp:
            if c["name"] in g and c != g[c["name"]]:
                for k in c:
                    if c[k] != g[c["name"]].get(k):
                        out.append(f"        {c['name']}.{k}: expected {show(c[k])}, got {show(g[c['name']].get(k))}")
        return "\n".join(out)
    return f"    {field}: expected {show(exp)}, got {show(got)}"


def compare_node(uid, kind, exp, got, fields, opts):
    diffs = []
    for f in fields:
        e = norm(f, get(exp, f), kind, opts)
        if e is _MISSING:
            continue  # dbt itself has no such field for this node
        g = norm(f, get(got, f), kind, opts)
        if e != g:
            diffs.append(field_diff(f, e, g))
            FIELD_MISMATCHES[f"{kind}.{f}"] = FIELD_MISMATCHES.get(f"{kind}.{f}", 0) + 1
    return diffs


def compare_status(kind, result, got):
    """dbt's run-result status (success / error / skipped) against Backflow's compile_status,
    and for a skipped node whether dbt gave a reason (a skip caused by a failed ephemeral
    upstream carries one, and makes dbt exit with an error) against Backflow's compile_error."""
    b = got.get("backflow") or {}
    exp = (result["status"], result["status"] == "skipped" and result.get("message") is not None)
    st = b.get("compile_status")
    gotv = (st, st == "skipped" and b.get("compile_error") is not None)
    if exp == gotv:
        return []
    FIELD_MISMATCHES[f"{kind}.status"] = FIELD_MISMATCHES.get(f"{kind}.status", 0) + 1
    why = lambda v: v[0] + (" (with a reason)" if v[1] else "")
    return [f"    status: expected {why(exp)} ({(result.get('message') or '').splitlines()[:2]}), "
            f"got {why(gotv)} ({(b.get('compile_error') or '')[:200]!r})"]


def as_id_set(disabled):
    if disabled is None:
        return None
    if isinstance(disabled, dict):
        return set(disabled)
    return {d if isinstance(d, str) else d.get("unique_id") for d in disabled}


def load_json(path):
    if path.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return json.load(fh)
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def compare_project(name, expected_path, got_path, error, opts):
    """Returns (per-kind counts, report lines)."""
    exp = load_json(expected_path)
    lines = []
    kinds = {}

    def tally(kind, ok):
        t = kinds.setdefault(kind, [0, 0])
        t[0] += 1
        t[1] += int(ok)

    exp_items = {}
    for uid, n in exp.get("nodes", {}).items():
        rt = n.get("resource_type")
        if rt in KINDS:
            exp_items[uid] = (rt, n, KINDS[rt])
    for uid, n in exp.get("sources", {}).items():
        exp_items[uid] = ("source", n, SOURCE_FIELDS)
    exp_disabled = set(exp.get("disabled", {}))

    if error or got_path is None:
        for uid, (kind, _, _) in exp_items.items():
            tally(kind, False)
        for _ in exp_disabled:
            tally("disabled", False)
        lines.append(f"  backflow produced no output: {error or 'not run'}")
        return kinds, lines

    try:
        got = load_json(got_path)
    except (OSError, ValueError) as e:
        for uid, (kind, _, _) in exp_items.items():
            tally(kind, False)
        for _ in exp_disabled:
            tally("disabled", False)
        lines.append(f"  backflow output is not JSON: {e}")
        return kinds, lines

    errs = got.get("errors") or []
    if errs:
        lines.append(f"  backflow reported {len(errs)} error(s):")
        for e in errs[:10]:
            lines.append("    " + (json.dumps(e, ensure_ascii=False) if not isinstance(e, str) else e)[:400])
    got_all = dict(got.get("nodes", {}))
    got_all.update(got.get("sources", {}))
    results = exp.get("results")  # only for projects whose nodes fail on purpose
    for uid in sorted(exp_items):
        kind, e, fields = exp_items[uid]
        g = got_all.get(uid)
        if g is None:
            FIELD_MISMATCHES[f"{kind}: missing"] = FIELD_MISMATCHES.get(f"{kind}: missing", 0) + 1
            tally(kind, False)
            lines.append(f"  {uid}: missing in backflow output")
            continue
        diffs = compare_node(uid, kind, e, g, fields, opts)
        if results is not None and uid in results:
            diffs.extend(compare_status(kind, results[uid], g))
        tally(kind, not diffs)
        if diffs:
            lines.append(f"  {uid}:")
            lines.extend(diffs)
    # extra models/sources/tests that dbt does not have
    for uid, g in sorted(got_all.items()):
        rt = g.get("resource_type") or uid.split(".", 1)[0]
        if rt in ("source", *KINDS) and uid not in exp_items:
            tally(rt, False)
            FIELD_MISMATCHES[f"{rt}: extra"] = FIELD_MISMATCHES.get(f"{rt}: extra", 0) + 1
            lines.append(f"  {uid}: in backflow output but not in dbt's manifest"
                         + (" (dbt has it as disabled)" if uid in exp_disabled else ""))
    got_disabled = as_id_set(got.get("disabled"))
    for uid in sorted(exp_disabled):
        ok = got_disabled is not None and uid in got_disabled
        tally("disabled", ok)
        if not ok:
            lines.append(f"  disabled {uid}: dbt lists it as disabled, backflow does not"
                         + (" (no `disabled` key in output)" if got_disabled is None else ""))
    for uid in sorted((got_disabled or set()) - exp_disabled):
        tally("disabled", False)
        lines.append(f"  disabled {uid}: backflow lists it as disabled, dbt does not")
    return kinds, lines


def pct(a, b):
    return 100.0 * a / b if b else 100.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", help="index.json written by harness.py")
    ap.add_argument("--pair", nargs=3, action="append", default=[], metavar=("NAME", "DBT_MANIFEST", "BACKFLOW_JSON"))
    ap.add_argument("--ignore-builtin-macros", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="only the summary lines")
    opts = ap.parse_args()

    runs = []
    if opts.index:
        for e in json.load(open(opts.index)):
            runs.append((e["project"], e.get("adapter", "postgres"), e["expected"], e.get("got"),
                         e.get("error")))
    for name, e, g in opts.pair:
        runs.append((name, "postgres", e, g, None))
    if not runs:
        ap.error("nothing to compare")

    total_n = total_ok = 0
    total_kinds = {}
    summaries = []
    cells = {}  # (project, adapter) -> (ok, n)
    for name, adapter, e, g, err in runs:
        kinds, lines = compare_project(name, e, g, err, opts)
        n = sum(v[0] for v in kinds.values())
        ok = sum(v[1] for v in kinds.values())
        cells[(name, adapter)] = (ok, n)
        total_n += n
        total_ok += ok
        for k, (a, b) in kinds.items():
            t = total_kinds.setdefault(k, [0, 0])
            t[0] += a
            t[1] += b
        by_kind = ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in sorted(kinds.items()))
        label = f"{adapter}/{name}"
        summary = f"conformance: {label}: {ok}/{n} nodes match ({pct(ok, n):.1f}%)  [{by_kind}]"
        summaries.append(summary)
        if lines and not opts.quiet:
            print(f"--- {label}: differences (expected = dbt 1.7.20 + dbt-{adapter}, got = backflow) ---")
            print("\n".join(lines))
            print()
    if FIELD_MISMATCHES:
        top = sorted(FIELD_MISMATCHES.items(), key=lambda kv: (-kv[1], kv[0]))
        print("mismatches by field (nodes): " + ", ".join(f"{k} {v}" for k, v in top))
    for s in summaries:
        print(s)
    print()
    print(table(cells))
    print()
    by_kind = ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in sorted(total_kinds.items()))
    note = " (macro.dbt.* ignored)" if opts.ignore_builtin_macros else ""
    print(f"conformance: {total_ok}/{total_n} nodes match ({pct(total_ok, total_n):.1f}%)  [{by_kind}]{note}")
    # the plain closing line CI runners recognise: one compared node = one check
    print(f"conformance: {total_ok} passed, {total_n - total_ok} failed")
    return 0 if total_ok == total_n else 1


ADAPTER_ORDER = ["postgres", "redshift", "snowflake", "bigquery", "databricks"]


def table(cells):
    """project x adapter: `ok/n` per cell (a `*` marks a cell below 100%)."""
    projects = sorted({p for p, _ in cells})
    adapters = sorted({a for _, a in cells},
                      key=lambda a: (ADAPTER_ORDER.index(a) if a in ADAPTER_ORDER else 99, a))
    def cell(p, a):
        if (p, a) not in cells:
            return "-"
        ok, n = cells[(p, a)]
        return f"{ok}/{n}" + ("" if ok == n else " *")
    rows = [["project", *adapters]]
    for p in projects:
        rows.append([p, *(cell(p, a) for a in adapters)])
    tot = []
    for a in adapters:
        ok = sum(v[0] for (p, aa), v in cells.items() if aa == a)
        n = sum(v[1] for (p, aa), v in cells.items() if aa == a)
        tot.append(f"{ok}/{n} ({pct(ok, n):.1f}%)")
    rows.append(["all", *tot])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    out = [fmt(rows[0]), "  ".join("-" * w for w in widths)]
    out += [fmt(r) for r in rows[1:-1]]
    out += ["  ".join("-" * w for w in widths), fmt(rows[-1])]
    return "\n".join("conformance table: " + line for line in out)


if __name__ == "__main__":
    sys.exit(main())
