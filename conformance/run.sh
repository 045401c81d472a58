#!/usr/bin/env bash
# Conformance suite: Backflow's dbt engine vs dbt-core 1.7.20 on conformance/projects/*,
# under every adapter (postgres, redshift, snowflake, bigquery, databricks).
#
#   bash conformance/run.sh [--only PROJECT]... [--adapter A]... [--refresh] [--no-generated]
#                           [--ignore-builtin-macros] [--quiet]
#
# 1. PostgreSQL on 127.0.0.1:5432 is started if needed and gets a `warehouse` database;
# 2. backflow-dbt is built (release, CARGO_TARGET_DIR=target-dbt);
# 3. gen_project.py writes the benchmark's project at 300 models (generated_300; skip with
#    --no-generated), compared like the hand-written ones: conformance at scale;
# 4. dbt's expected outputs come from the committed conformance/expected/<adapter>/<p>/<hash>.json.gz
#    (hash of the project's files and the dbt invocation). Only on a miss (or --refresh, i.e.
#    `make conformance-refresh`) is a dbt virtualenv installed and dbt run: .venv-dbt
#    (dbt-postgres, local PostgreSQL) and .venv-dbt-adapters (the other adapters, offline);
# 5. harness.py always runs Backflow (`--adapter A`) on the same tree;
# 6. compare.py compares node by node, prints the project x adapter table and exits
#    non-zero unless every cell is 100%.
#
# Outputs (all under target/conformance/, gitignored): work/<adapter>/<p>/ (the tree both
# tools read), out/<adapter>/<p>/ (dbt logs, backflow.json, backflow.stderr), index.json.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The adapters `make conformance` covers (each one's expected outputs are committed).
# CONFORMANCE_ADAPTERS overrides the list; --adapter picks some.
adapters="${CONFORMANCE_ADAPTERS:-postgres redshift snowflake bigquery databricks}"
harness_args=()
compare_args=()
picked=0
generated=1
while [ $# -gt 0 ]; do
    case "$1" in
        --only) harness_args+=(--only "$2"); shift 2 ;;
        --adapter) harness_args+=(--adapter "$2"); picked=1; shift 2 ;;
        --refresh) harness_args+=(--refresh); shift ;;
        --no-generated) generated=0; shift ;;
        --ignore-builtin-macros|--quiet) compare_args+=("$1"); shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [ "$picked" = 0 ]; then
    for a in $adapters; do harness_args+=(--adapter "$a"); done
fi

OUT="$REPO_ROOT/target/conformance"
mkdir -p "$OUT"

ensure_postgres
build_backflow_dbt

if [ "$generated" = 1 ]; then
    # deterministic, so the expected outputs (keyed by file contents) still apply
    "$PYTHON" "$CONF_DIR/gen_project.py" --models 300 --out "$OUT/generated/generated_300" >&2
    harness_args+=(--extra "$OUT/generated/generated_300")
fi

harness=("$PYTHON" "$CONF_DIR/harness.py" --projects "$CONF_DIR/projects" --out "$OUT"
         --expected "$CONF_DIR/expected" ${harness_args[@]+"${harness_args[@]}"})
dbt_args=()
misses="$("${harness[@]}" --misses)"
for a in $misses; do
    if [ "$a" = postgres ]; then
        ensure_dbt_venv
        dbt_args+=(--dbt "$DBT")
    elif [ -z "${adapters_venv_ready:-}" ]; then
        ensure_adapters_venv
        adapters_venv_ready=1
        dbt_args+=(--dbt-adapters-python "$ADAPTERS_PY")
    fi
done
[ -n "$misses" ] && log "dbt runs for: $misses (expected outputs missing or --refresh)"

"${harness[@]}" ${dbt_args[@]+"${dbt_args[@]}"} --backflow "$BACKFLOW_DBT_BIN"

exec "$PYTHON" "$CONF_DIR/compare.py" --index "$OUT/index.json" ${compare_args[@]+"${compare_args[@]}"}
