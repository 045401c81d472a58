#!/usr/bin/env bash
# Conformance suite: Backflow's dbt engine vs dbt-core 1.7.20 on conformance/projects/*.
#
#   bash conformance/run.sh [--only PROJECT]... [--refresh] [--no-generated] [--ignore-builtin-macros]
#
# 1. .venv-dbt (repo root, gitignored) gets dbt-core 1.7.20 + dbt-postgres 1.7.20 from PyPI;
# 2. PostgreSQL on 127.0.0.1:5432 is started if needed and gets a `warehouse` database;
# 3. backflow-dbt is built (release, CARGO_TARGET_DIR=target-dbt);
# 4. gen_project.py writes the benchmark's project at 300 models (generated_300; skip with
#    --no-generated), compared like the hand-written ones: conformance at scale;
# 5. harness.py runs `dbt parse` + `dbt compile` per project (cached by a hash of the
#    project's files under target/conformance/dbt-cache) and always runs Backflow;
# 6. compare.py compares node by node and exits non-zero unless 100% match.
#
# Outputs (all under target/conformance/, gitignored): work/<p>/ (the tree both tools
# read), out/<p>/ (dbt logs, backflow.json, backflow.stderr), index.json.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

harness_args=()
compare_args=()
generated=1
while [ $# -gt 0 ]; do
    case "$1" in
        --only) harness_args+=(--only "$2"); shift 2 ;;
        --refresh) harness_args+=(--refresh); shift ;;
        --no-generated) generated=0; shift ;;
        --ignore-builtin-macros|--quiet) compare_args+=("$1"); shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

OUT="$REPO_ROOT/target/conformance"
mkdir -p "$OUT"

ensure_dbt_venv
ensure_postgres
build_backflow_dbt

if [ "$generated" = 1 ]; then
    # deterministic, so the dbt cache (keyed by file contents) still applies
    "$PYTHON" "$CONF_DIR/gen_project.py" --models 300 --out "$OUT/generated/generated_300" >&2
    harness_args+=(--extra "$OUT/generated/generated_300")
fi

"$PYTHON" "$CONF_DIR/harness.py" \
    --projects "$CONF_DIR/projects" --out "$OUT" \
    --dbt "$DBT" --backflow "$BACKFLOW_DBT_BIN" "${harness_args[@]}"

exec "$PYTHON" "$CONF_DIR/compare.py" --index "$OUT/index.json" "${compare_args[@]}"
