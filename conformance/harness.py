#!/usr/bin/env python3
"""Run dbt (the oracle) and Backflow on every conformance project, under every adapter.

Called by conformance/run.sh after PostgreSQL and the Backflow binary are ready. For each
adapter (postgres, redshift, snowflake, bigquery, databricks) and each project under
conformance/projects/<name>/:

1. copy it to target/conformance/work/<adapter>/<name>/ and install its `local:` packages
   into dbt_packages/ by copying them (what `dbt deps` does for a local package, minus the
   symlink it would create), so dbt and Backflow read exactly the same tree; for an adapter
   other than postgres the project's profiles.yml is replaced by one for that adapter with
   dummy credentials (same target names, database/project/catalog `warehouse`, schema /
   dataset `analytics`);
2. dbt's expected output is read from the committed folder conformance/expected/<adapter>/
   <name>/<hash>.json.gz, keyed by a hash of the project's files and this harness' dbt
   invocation (ADAPTERS[..]["salt"]). On a miss (or with --refresh) dbt runs: `dbt parse
   --no-partial-parse` then `dbt compile --no-populate-cache`, postgres with dbt-core 1.7.20
   + dbt-postgres in .venv-dbt against the local empty PostgreSQL, the other adapters with
   dbt-<adapter> 1.7.x in .venv-dbt-adapters through dbt_offline.py (no connection: every
   warehouse call answers as an empty warehouse would). compile's manifest.json is stripped
   to the fields compare.py reads, gzipped and written there (older hashes of that
   project/adapter are removed), so a fresh clone compares without running dbt at all;
3. always run `backflow-dbt parse --adapter <adapter>` on the same tree with the same
   target, vars and environment, and keep its JSON.

`--misses` only prints the adapters whose expected output is missing (run.sh uses it to
install a dbt virtualenv only when one is needed).

Stdlib only. Per-project settings come from conformance.json:
  {"target_name": "dev", "vars": {...}, "env": {"NAME": "value"}, "dbt_node_errors": false}
`dbt_node_errors: true` marks a project whose nodes fail to compile on purpose: dbt compile
runs through dbt_keep_going.py (reporting every node, as run/build do), exit 1 is accepted,
and the expected output also keeps run_results' status per node.
"""

import argparse
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

TARGET_SCHEMA = "analytics"
TARGET_DATABASE = "warehouse"  # the profiles' dbname / project / catalog

# Per adapter: the oracle's versions (bump `salt` when the way dbt is invoked changes, to
# invalidate the expected outputs) and the profile output with dummy credentials.
ADAPTERS = {
    "postgres": {"salt": "dbt-1.7.20+postgres-1.7.20/parse+compile/no-populate-cache/v1",
                 "profile": None},  # the project's own profiles.yml (local PostgreSQL)
    "redshift": {"salt": "dbt-1.7.20+redshift-1.7.7/offline/v1",
                 "profile": {"type": "redshift", "host": "offline.invalid", "port": 5439,
                             "user": "dbt", "password": "offline", "dbname": TARGET_DATABASE,
                             "schema": TARGET_SCHEMA}},
    "snowflake": {"salt": "dbt-1.7.20+snowflake-1.7.5/offline/v1",
                  "profile": {"type": "snowflake", "account": "offline", "user": "dbt",
                              "password": "offline", "database": TARGET_DATABASE,
                              "warehouse": "offline_wh", "schema": TARGET_SCHEMA}},
    "bigquery": {"salt": "dbt-1.7.20+bigquery-1.7.9/offline/v1",
                 "profile": {"type": "bigquery", "method": "oauth", "project": TARGET_DATABASE,
                             "dataset": TARGET_SCHEMA}},
    "databricks": {"salt": "dbt-1.7.20+databricks-1.7.17/offline/v1",
                   "profile": {"type": "databricks", "host": "offline.invalid",
                               "http_path": "/sql/1.0/warehouses/offline", "token": "offline",
                               "catalog": TARGET_DATABASE, "schema": TARGET_SCHEMA}},
}

# The manifest fields compare.py reads (everything else is dropped from expected outputs).
NODE_KEYS = (
    "resource_type", "name", "package_name", "original_file_path", "fqn", "database", "schema",
    "alias", "relation_name", "config", "enabled", "tags", "meta", "description", "columns",
    "depends_on", "checksum", "version", "latest_version", "access", "group", "contract",
    "docs", "raw_code", "compiled_code", "attached_node", "column_name", "test_metadata",
    "source_name", "identifier", "loader", "loaded_at_field",
)


def log(msg):
    print(f"[conformance] {msg}", file=sys.stderr, flush=True)


def project_hash(src, salt):
    """sha256 over every file (path + bytes) of a project, plus the adapter's salt."""
    h = hashlib.sha256(salt.encode())
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in ("target", "logs", "dbt_packages"))
        for f in sorted(files):
            p = os.path.join(root, f)
            h.update(os.path.relpath(p, src).encode() + b"\0")
            with open(p, "rb") as fh:
                h.update(fh.read())
            h.update(b"\0")
    return h.hexdigest()[:20]


def local_packages(project_dir):
    """The `local:` entries of packages.yml (the only kind the suite uses)."""
    path = os.path.join(project_dir, "packages.yml")
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path):
        m = re.match(r"\s*-?\s*local:\s*['\"]?([^'\"#\s]+)", line)
        if m:
            out.append(m.group(1))
    return out


def package_name(pkg_dir):
    with open(os.path.join(pkg_dir, "dbt_project.yml")) as fh:
        for line in fh:
            m = re.match(r"name:\s*['\"]?([A-Za-z0-9_]+)", line)
            if m:
                return m.group(1)
    raise SystemExit(f"no name: in {pkg_dir}/dbt_project.yml")


def prepare_workdir(src, work):
    if os.path.exists(work):
        shutil.rmtree(work)
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    for rel in local_packages(src):
        pkg_src = os.path.normpath(os.path.join(src, rel))
        dest = os.path.join(work, "dbt_packages", package_name(pkg_src))
        shutil.copytree(pkg_src, dest)


def profile_name(project_dir):
    with open(os.path.join(project_dir, "dbt_project.yml")) as fh:
        for line in fh:
            m = re.match(r"profile:\s*['\"]?([A-Za-z0-9_]+)", line)
            if m:
                return m.group(1)
    raise SystemExit(f"no profile: in {project_dir}/dbt_project.yml")


def write_profile(work, adapter, target_name):
    """profiles.yml for `adapter` with dummy credentials (JSON is valid YAML)."""
    output = dict(ADAPTERS[adapter]["profile"], threads=1)
    outputs = {t: output for t in sorted({"dev", target_name})}
    doc = {profile_name(work): {"target": target_name, "outputs": outputs}}
    with open(os.path.join(work, "profiles.yml"), "w") as fh:
        fh.write("# written by conformance/harness.py: no warehouse is ever contacted\n")
        json.dump(doc, fh, indent=1)


def strip_manifest(manifest, run_results=None):
    """The parts of dbt's manifest compare.py reads; with `run_results` (projects whose nodes
    fail on purpose) also each node's compile status and whether dbt gave a message."""
    keep = lambda n: {k: n[k] for k in NODE_KEYS if k in n}
    out = {
        "nodes": {u: keep(n) for u, n in manifest.get("nodes", {}).items()
                  if n.get("resource_type") in ("model", "test", "seed", "snapshot")},
        "sources": {u: keep(n) for u, n in manifest.get("sources", {}).items()},
        "disabled": {u: [] for u in manifest.get("disabled", {})},
    }
    if run_results is not None:
        out["results"] = {r["unique_id"]: {"status": r["status"], "message": r.get("message")}
                          for r in run_results.get("results", [])}
    return out


def expected_path(expected_dir, adapter, name, key):
    return os.path.join(expected_dir, adapter, name, f"{key}.json.gz")


def save_expected(path, manifest_path, run_results_path=None):
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    run_results = None
    if run_results_path is not None:
        with open(run_results_path) as fh:
            run_results = json.load(fh)
    stripped = strip_manifest(manifest, run_results)
    for old in glob.glob(os.path.join(os.path.dirname(path), "*.json.gz")):
        os.remove(old)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # key order kept: compare.py reads the order of `columns`
    data = json.dumps(stripped, indent=0, ensure_ascii=False).encode()
    with gzip.GzipFile(path, "wb", mtime=0) as fh:  # mtime=0: same bytes for the same output
        fh.write(data)


def run(cmd, env, log_path, cwd=None):
    t0 = time.monotonic()
    with open(log_path, "w") as out:
        rc = subprocess.call(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    return rc, time.monotonic() - t0


def tail(path, n=40):
    try:
        return "".join(open(path, errors="replace").readlines()[-n:])
    except OSError:
        return ""


def dbt_command(args, adapter):
    """The oracle's command line prefix for `adapter`."""
    if adapter == "postgres":
        return [args.dbt]
    return [args.dbt_adapters_python, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "dbt_offline.py")]


def run_dbt(args, adapter, name, work, out, target_name, vars_json, env, node_errors=False):
    """dbt parse + compile; returns compile's manifest path, or None when dbt failed.

    With `node_errors` (conformance.json `dbt_node_errors`: the project has nodes that fail
    to compile on purpose) a compile that exits 1 still counts when dbt wrote its manifest
    and run results (exit 2, or no run results, is a broken project)."""
    common = ["--project-dir", work, "--profiles-dir", work, "--target", target_name,
              "--vars", vars_json, "--log-path", os.path.join(out, "dbt-logs")]
    base = dbt_command(args, adapter)
    env = dict(env, DBT_OFFLINE_ADAPTER=adapter)
    rc, dt = run([*base, "parse", "--no-partial-parse", *common,
                  "--target-path", os.path.join(out, "dbt-parse")],
                 env, os.path.join(out, "dbt-parse.log"), cwd=work)
    log(f"{adapter}/{name}: dbt parse rc={rc} ({dt:.1f}s)")
    if rc == 0:
        compile_base = base
        if node_errors:  # report every node (as run/build do) instead of stopping at the first
            python = (os.path.join(os.path.dirname(args.dbt), "python") if adapter == "postgres"
                      else args.dbt_adapters_python)
            compile_base = [python, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "dbt_keep_going.py")]
        rc, dt = run([*compile_base, "compile", "--no-partial-parse", "--no-populate-cache",
                      *common, "--target-path", os.path.join(out, "dbt-compile")],
                     env, os.path.join(out, "dbt-compile.log"), cwd=work)
        log(f"{adapter}/{name}: dbt compile rc={rc} ({dt:.1f}s)")
        if rc == 1 and node_errors and os.path.exists(
                os.path.join(out, "dbt-compile", "run_results.json")):
            rc = 0
    if rc != 0:
        log(f"{adapter}/{name}: dbt failed; the project itself is broken:\n" +
            tail(os.path.join(out, "dbt-parse.log")) + tail(os.path.join(out, "dbt-compile.log")))
        return None
    return os.path.join(out, "dbt-compile", "manifest.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--projects", required=True, help="conformance/projects")
    ap.add_argument("--out", required=True, help="target/conformance")
    ap.add_argument("--expected", required=True, help="conformance/expected (committed)")
    ap.add_argument("--dbt", help="dbt of .venv-dbt (postgres oracle)")
    ap.add_argument("--dbt-adapters-python", help="python of .venv-dbt-adapters (other oracles)")
    ap.add_argument("--backflow", help="backflow-dbt binary (omit to only run dbt)")
    ap.add_argument("--adapter", action="append", default=[],
                    help=f"one of {', '.join(ADAPTERS)} (repeatable; default all)")
    ap.add_argument("--only", action="append", default=[], help="project name (repeatable)")
    ap.add_argument("--extra", action="append", default=[],
                    help="another project directory, e.g. a generated one (repeatable)")
    ap.add_argument("--extra-adapters", default=None,
                    help="comma-separated adapters the --extra projects run under (default all)")
    ap.add_argument("--refresh", action="store_true", help="re-run dbt even on a hit")
    ap.add_argument("--misses", action="store_true",
                    help="only print the adapters whose expected output is missing")
    args = ap.parse_args()
    args.out = os.path.abspath(args.out)  # index.json must work from any directory
    args.expected = os.path.abspath(args.expected)
    for k in ("dbt", "dbt_adapters_python", "backflow"):
        if getattr(args, k):  # dbt runs in the work dir
            setattr(args, k, os.path.abspath(getattr(args, k)))
    adapters = args.adapter or list(ADAPTERS)
    for a in adapters:
        if a not in ADAPTERS:
            ap.error(f"unknown adapter {a}")

    sources = {
        d: os.path.join(args.projects, d) for d in os.listdir(args.projects)
        if os.path.exists(os.path.join(args.projects, d, "dbt_project.yml"))
    }
    extra_names = set()
    for extra in args.extra:
        n = os.path.basename(os.path.normpath(extra))
        sources[n] = os.path.abspath(extra)
        extra_names.add(n)
    extra_adapters = (args.extra_adapters.split(",") if args.extra_adapters else list(ADAPTERS))
    names = sorted(sources)
    if args.only:
        names = [n for n in names if n in args.only]
    cells = [(a, n) for a in adapters for n in names
             if n not in extra_names or a in extra_adapters]

    if args.misses:
        missing = sorted({a for a, n in cells if args.refresh or not os.path.exists(
            expected_path(args.expected, a, n, project_hash(sources[n], ADAPTERS[a]["salt"])))})
        print(" ".join(missing))
        return 0

    index = []
    failed = False
    for adapter, name in cells:
        src = sources[name]
        conf_path = os.path.join(src, "conformance.json")
        conf = json.load(open(conf_path)) if os.path.exists(conf_path) else {}
        target_name = conf.get("target_name", "dev")
        vars_json = json.dumps(conf.get("vars", {}), sort_keys=True)
        env = dict(os.environ)
        env.update({k: str(v) for k, v in conf.get("env", {}).items()})
        for k in conf.get("unset_env", []):
            env.pop(k, None)

        work = os.path.join(args.out, "work", adapter, name)
        out = os.path.join(args.out, "out", adapter, name)
        os.makedirs(out, exist_ok=True)
        prepare_workdir(src, work)
        if ADAPTERS[adapter]["profile"] is not None:
            write_profile(work, adapter, target_name)

        # --- dbt (expected output, committed, by content hash) ------------------------
        key = project_hash(src, ADAPTERS[adapter]["salt"])
        expected = expected_path(args.expected, adapter, name, key)
        if args.refresh or not os.path.exists(expected):
            if (adapter == "postgres" and not args.dbt) or (
                    adapter != "postgres" and not args.dbt_adapters_python):
                log(f"{adapter}/{name}: no expected output for hash {key} and no dbt to make it")
                failed = True
                continue
            node_errors = bool(conf.get("dbt_node_errors"))
            for d in ("dbt-parse", "dbt-compile"):
                shutil.rmtree(os.path.join(out, d), ignore_errors=True)
            manifest = run_dbt(args, adapter, name, work, out, target_name, vars_json, env,
                               node_errors)
            if manifest is None:
                failed = True
                continue
            save_expected(expected, manifest, os.path.join(
                os.path.dirname(manifest), "run_results.json") if node_errors else None)
            log(f"{adapter}/{name}: expected output written ({os.path.relpath(expected, args.expected)})")
        else:
            log(f"{adapter}/{name}: expected output from conformance/expected ({key})")

        entry = {"project": name, "adapter": adapter, "expected": expected, "got": None,
                 "error": None}
        # --- Backflow (always) --------------------------------------------------------
        if args.backflow:
            got = os.path.join(out, "backflow.json")
            cmd = [args.backflow, "parse", work, "--target-schema", TARGET_SCHEMA,
                   "--target-name", target_name, "--adapter", adapter,
                   "--target-database", TARGET_DATABASE, "--vars", vars_json]
            t0 = time.monotonic()
            with open(got, "w") as fo, open(os.path.join(out, "backflow.stderr"), "w") as fe:
                rc = subprocess.call(cmd, env=env, stdout=fo, stderr=fe)
            dt = time.monotonic() - t0
            log(f"{adapter}/{name}: backflow-dbt parse rc={rc} ({dt * 1000:.0f} ms)")
            entry["got"] = got
            if rc != 0:
                entry["error"] = f"backflow-dbt exited {rc}: " + tail(os.path.join(out, "backflow.stderr"), 15)
        index.append(entry)

    with open(os.path.join(args.out, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
