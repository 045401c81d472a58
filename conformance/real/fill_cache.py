#!/usr/bin/env python3
"""Fill the conformance-real cache from local git mirrors (third-party code stays outside the repo).

    fill_cache.py [--mirrors /work/.mirror] [--cache /work/cache/dbt-real]

For every entry of pins.json, `git archive`s the pinned tag or commit of the mirror
<mirrors>/<owner>+<name>/repo into <cache>/packages/<key>/ or <cache>/projects/<key>/
(a project's subdirectory only, when pins.json names one). Existing entries are kept.
Mirrors are bare git directories (as the session's fetch tool brings them); a missing
mirror is reported and skipped.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))


def export(mirror, rev, subdir, dest):
    tmp = dest + ".tmp"
    data = subprocess.run(["git", "-C", mirror, "archive", "--format=tar", rev]
                          + ([subdir] if subdir else []), check=True, capture_output=True).stdout
    os.makedirs(tmp, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            name = m.name
            if subdir:
                if not name.startswith(subdir.rstrip("/") + "/"):
                    continue
                name = name[len(subdir.rstrip("/")) + 1:]
            if not name or m.issym() or m.islnk() or ".." in name.split("/"):
                continue
            m.name = name
            tf.extract(m, tmp, filter="data")
    os.rename(tmp, dest)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--cache", default=os.environ.get("DBT_REAL_CACHE", "/work/cache/dbt-real"))
    args = ap.parse_args()
    pins = json.load(open(os.path.join(HERE, "pins.json")))
    missing = 0
    for kind in ("packages", "projects"):
        for key, spec in pins[kind].items():
            repo, rev = spec[0], spec[1]
            subdir = spec[2] if len(spec) > 2 else ""
            dest = os.path.join(args.cache, kind, key)
            if os.path.isdir(dest):
                continue
            mirror = os.path.join(args.mirrors, repo.replace("/", "+"), "repo")
            if not os.path.isdir(mirror):
                print(f"[real] no mirror for {repo} ({mirror}); skipped {key}", file=sys.stderr)
                missing += 1
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            export(mirror, rev, subdir, dest)
            print(f"[real] {kind}/{key} <- {repo}@{rev}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
