#!/usr/bin/env python3
"""conformance-real driver: Backflow vs dbt-core 1.7.20 on real packages and public projects.

Called by conformance/real.sh once the cache, the dbt virtualenv, PostgreSQL and the
Backflow binary are ready. For each run of real/runs.json:

1. assemble target/conformance-real/src/<run>/: our wrapper project (real/wrappers/) or a
   public project from the cache, with a profiles.yml for its `profile:` (the run's
   `adapter`, postgres unless runs.json says otherwise: a project written for Snowflake is
   compiled as Snowflake, offline through dbt_offline.py) and its
   packages (from the cache, pinned in real/pins.json) copied into dbt_packages/;
2. run `dbt parse` + `dbt compile` there (cached by a hash of the assembled tree). Unlike
   the hand-written suite, dbt may fail on some nodes of third-party code offline: compile
   runs through dbt_keep_going.py (every node reported, as run/build do, instead of an abort
   at the first error) and the manifest dbt writes is used as it is (compile's when there
   is one, else parse's);
3. run `backflow-dbt parse` and compare node by node with compare.py (same fields).

Stdlib only; the third-party code is read from the cache and never written to the repo.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402  (project_hash, run, tail, log, package_name, constants)

DEFAULT_ADAPTER = "postgres"

PROFILE = """# written by conformance/real.py: local PostgreSQL, trust auth
{name}:
  target: dev
  outputs:
    dev:
      type: postgres
      host: 127.0.0.1
      port: 5432
      user: postgres
      password: ""
      dbname: {db}
      schema: {schema}
      threads: 1
"""

IGNORE = shutil.ignore_patterns("target", "logs", "dbt_packages", ".git", "package-lock.yml")


def profile_name(project_dir):
    with open(os.path.join(project_dir, "dbt_project.yml")) as fh:
        for line in fh:
            m = re.match(r"profile:\s*['\"]?([A-Za-z0-9_\-]+)", line)
            if m:
                return m.group(1)
    return "default"


def assemble(run, spec, cache, dest, adapter):
    if os.path.exists(dest):
        shutil.rmtree(dest)
    if "wrapper" in spec:
        src = os.path.join(HERE, "real", "wrappers", spec["wrapper"])
    else:
        src = os.path.join(cache, "projects", spec["project"])
    if not os.path.isdir(src):
        return f"missing {src}"
    shutil.copytree(src, dest, ignore=IGNORE)
    for key in spec.get("packages", []):
        pkg = os.path.join(cache, "packages", key)
        if not os.path.isdir(pkg):
            return f"missing cached package {key}"
        shutil.copytree(pkg, os.path.join(dest, "dbt_packages", harness.package_name(pkg)),
                        ignore=IGNORE)
    # packages are installed already; dbt must not try to resolve hub packages
    for f in ("packages.yml", "dependencies.yml"):
        p = os.path.join(dest, f)
        if os.path.exists(p):
            os.remove(p)
    if adapter == "postgres":
        with open(os.path.join(dest, "profiles.yml"), "w") as fh:
            fh.write(PROFILE.format(name=profile_name(dest), db=harness.TARGET_DATABASE,
                                    schema=harness.TARGET_SCHEMA))
    else:  # dummy credentials: dbt runs offline (dbt_offline.py)
        harness.write_profile(dest, adapter, "dev")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dbt", required=True)
    ap.add_argument("--backflow", required=True)
    ap.add_argument("--dbt-adapters-python", default="",
                    help="python of .venv-dbt-adapters (runs whose `adapter` is not postgres)")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--refresh", action="store_true")
    args = ap.parse_args()
    runs = json.load(open(os.path.join(HERE, "real", "runs.json")))
    names = [n for n in runs if not n.startswith("_") and (not args.only or n in args.only)]
    os.makedirs(os.path.join(args.out, "dbt-cache"), exist_ok=True)
    index = []
    for name in names:
        spec = runs[name]
        src = os.path.join(args.out, "src", name)
        out = os.path.join(args.out, "out", name)
        os.makedirs(out, exist_ok=True)
        adapter = spec.get("adapter", DEFAULT_ADAPTER)
        problem = assemble(name, spec, args.cache, src, adapter)
        if problem:
            harness.log(f"{name}: skipped ({problem})")
            continue
        vars_json = json.dumps(spec.get("vars", {}), sort_keys=True)
        target_name = "dev"
        env = dict(os.environ, DBT_OFFLINE_ADAPTER=adapter)
        key = harness.project_hash(src, "real/dbt-1.7.20/keep-going/" + harness.ADAPTERS[adapter]["salt"]
                                   + json.dumps(spec, sort_keys=True))
        cached = os.path.join(args.out, "dbt-cache", f"{name}-{key}.manifest.json")
        if args.refresh or not os.path.exists(cached):
            common = ["--project-dir", src, "--profiles-dir", src, "--target", target_name,
                      "--vars", vars_json, "--log-path", os.path.join(out, "dbt-logs")]
            for d in ("dbt-parse", "dbt-compile"):
                shutil.rmtree(os.path.join(out, d), ignore_errors=True)
            if adapter == "postgres":
                parse_base = [args.dbt]
                python = os.path.join(os.path.dirname(args.dbt), "python")
            else:
                if not args.dbt_adapters_python:
                    harness.log(f"{name}: skipped (needs --dbt-adapters-python for {adapter})")
                    continue
                python = args.dbt_adapters_python
                parse_base = [python, os.path.join(HERE, "dbt_offline.py")]
            rc, dt = harness.run([*parse_base, "parse", "--no-partial-parse", *common,
                                  "--target-path", os.path.join(out, "dbt-parse")],
                                 env, os.path.join(out, "dbt-parse.log"), cwd=src)
            harness.log(f"{name}: dbt parse rc={rc} ({dt:.1f}s)")
            manifest = os.path.join(out, "dbt-parse", "manifest.json")
            if rc == 0:
                # keep compiling past a node that fails (as run/build do) instead of
                # aborting at the first: third-party code offline has such nodes
                keep_going = [python, os.path.join(HERE, "dbt_keep_going.py")]
                rc, dt = harness.run([*keep_going, "compile", "--no-partial-parse",
                                      "--no-populate-cache", *common,
                                      *spec.get("compile_args", []),
                                      "--target-path", os.path.join(out, "dbt-compile")],
                                     env, os.path.join(out, "dbt-compile.log"), cwd=src)
                harness.log(f"{name}: dbt compile rc={rc} ({dt:.1f}s)")
                compiled = os.path.join(out, "dbt-compile", "manifest.json")
                if os.path.exists(compiled):
                    manifest = compiled
            if not os.path.exists(manifest):
                harness.log(f"{name}: dbt wrote no manifest; skipped:\n"
                            + harness.tail(os.path.join(out, "dbt-parse.log"), 15))
                continue
            shutil.copyfile(manifest, cached)
        entry = {"project": name, "adapter": adapter, "expected": cached, "got": None,
                 "error": None}
        got = os.path.join(out, "backflow.json")
        cmd = [args.backflow, "parse", src, "--target-schema", harness.TARGET_SCHEMA,
               "--target-name", target_name, "--adapter", adapter,
               "--target-database", harness.TARGET_DATABASE, "--vars", vars_json]
        with open(got, "w") as fo, open(os.path.join(out, "backflow.stderr"), "w") as fe:
            rc = subprocess.call(cmd, env=env, stdout=fo, stderr=fe)
        entry["got"] = got
        if rc != 0:
            entry["error"] = f"backflow-dbt exited {rc}: " + harness.tail(os.path.join(out, "backflow.stderr"), 15)
        index.append(entry)
    with open(os.path.join(args.out, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
