#!/usr/bin/env python3
"""Run dbt (the oracle) and Backflow on every conformance project.

Called by conformance/run.sh after the virtualenv, PostgreSQL and the Backflow binary
are ready. For each project under conformance/projects/<name>/:

1. copy it to target/conformance/work/<name>/ and install its `local:` packages into
   dbt_packages/ by copying them (what `dbt deps` does for a local package, minus the
   symlink it would create), so dbt and Backflow read exactly the same tree;
2. unless cached, run `dbt parse --no-partial-parse` and `dbt compile` there with the
   project's own profiles.yml and keep compile's target/manifest.json in the cache,
   keyed by a hash of the project's files, conformance.json and this harness' dbt
   invocation (so editing a project re-runs dbt, a rerun without edits does not);
3. always run `backflow-dbt parse` on the same tree with the same target, vars and
   environment, and keep its JSON.

Stdlib only. Per-project settings come from conformance.json:
  {"target_name": "dev", "vars": {...}, "env": {"NAME": "value"}}
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

# Bump when the way dbt is invoked changes, to invalidate cached manifests.
CACHE_SALT = "dbt-1.7.20/parse+compile/no-populate-cache/v1"

TARGET_SCHEMA = "analytics"
TARGET_TYPE = "postgres"
TARGET_DATABASE = "warehouse"  # the profiles' dbname


def log(msg):
    print(f"[conformance] {msg}", file=sys.stderr, flush=True)


def project_hash(src):
    """sha256 over every file (path + bytes) of a project, plus the cache salt."""
    h = hashlib.sha256(CACHE_SALT.encode())
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--projects", required=True, help="conformance/projects")
    ap.add_argument("--out", required=True, help="target/conformance")
    ap.add_argument("--dbt", required=True)
    ap.add_argument("--backflow", help="backflow-dbt binary (omit to only run dbt)")
    ap.add_argument("--only", action="append", default=[], help="project name (repeatable)")
    ap.add_argument("--extra", action="append", default=[],
                    help="another project directory, e.g. a generated one (repeatable)")
    ap.add_argument("--refresh", action="store_true", help="ignore the dbt cache")
    args = ap.parse_args()
    args.out = os.path.abspath(args.out)  # index.json must work from any directory

    sources = {
        d: os.path.join(args.projects, d) for d in os.listdir(args.projects)
        if os.path.exists(os.path.join(args.projects, d, "dbt_project.yml"))
    }
    for extra in args.extra:
        sources[os.path.basename(os.path.normpath(extra))] = os.path.abspath(extra)
    names = sorted(sources)
    if args.only:
        names = [n for n in names if n in args.only]
    cache_dir = os.path.join(args.out, "dbt-cache")
    os.makedirs(cache_dir, exist_ok=True)
    index = []
    failed = False
    for name in names:
        src = sources[name]
        conf_path = os.path.join(src, "conformance.json")
        conf = json.load(open(conf_path)) if os.path.exists(conf_path) else {}
        target_name = conf.get("target_name", "dev")
        vars_json = json.dumps(conf.get("vars", {}), sort_keys=True)
        env = dict(os.environ)
        env.update({k: str(v) for k, v in conf.get("env", {}).items()})
        for k in conf.get("unset_env", []):
            env.pop(k, None)

        work = os.path.join(args.out, "work", name)
        out = os.path.join(args.out, "out", name)
        os.makedirs(out, exist_ok=True)
        prepare_workdir(src, work)

        # --- dbt (cached) -------------------------------------------------------------
        key = project_hash(src)
        cached = os.path.join(cache_dir, f"{name}-{key}.manifest.json")
        if args.refresh or not os.path.exists(cached):
            common = ["--project-dir", work, "--profiles-dir", work, "--target", target_name,
                      "--vars", vars_json, "--log-path", os.path.join(out, "dbt-logs")]
            rc, dt = run([args.dbt, "parse", "--no-partial-parse", *common,
                          "--target-path", os.path.join(out, "dbt-parse")],
                         env, os.path.join(out, "dbt-parse.log"), cwd=work)
            log(f"{name}: dbt parse rc={rc} ({dt:.1f}s)")
            if rc == 0:
                rc, dt = run([args.dbt, "compile", "--no-partial-parse", "--no-populate-cache",
                              *common, "--target-path", os.path.join(out, "dbt-compile")],
                             env, os.path.join(out, "dbt-compile.log"), cwd=work)
                log(f"{name}: dbt compile rc={rc} ({dt:.1f}s)")
            if rc != 0:
                log(f"{name}: dbt failed; the project itself is broken:\n" +
                    tail(os.path.join(out, "dbt-parse.log")) + tail(os.path.join(out, "dbt-compile.log")))
                failed = True
                continue
            shutil.copyfile(os.path.join(out, "dbt-compile", "manifest.json"), cached)
        else:
            log(f"{name}: dbt manifest from cache ({os.path.basename(cached)})")

        entry = {"project": name, "expected": cached, "got": None, "error": None}
        # --- Backflow (always) --------------------------------------------------------
        if args.backflow:
            got = os.path.join(out, "backflow.json")
            cmd = [args.backflow, "parse", work, "--target-schema", TARGET_SCHEMA,
                   "--target-name", target_name, "--target-type", TARGET_TYPE,
                   "--target-database", TARGET_DATABASE, "--vars", vars_json]
            t0 = time.monotonic()
            with open(got, "w") as fo, open(os.path.join(out, "backflow.stderr"), "w") as fe:
                rc = subprocess.call(cmd, env=env, stdout=fo, stderr=fe)
            dt = time.monotonic() - t0
            log(f"{name}: backflow-dbt parse rc={rc} ({dt * 1000:.0f} ms)")
            entry["got"] = got
            if rc != 0:
                entry["error"] = f"backflow-dbt exited {rc}: " + tail(os.path.join(out, "backflow.stderr"), 15)
        index.append(entry)

    with open(os.path.join(args.out, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
