#!/usr/bin/env bash
# conformance-real: Backflow's dbt engine vs dbt-core 1.7.20 on popular dbt packages (inside
# our own wrapper projects, real/wrappers/) and public real-world projects, node by node.
#
#   bash conformance/real.sh [--only RUN]... [--refresh] [--details]
#
# The third-party code lives in a local cache OUTSIDE the repository (never committed):
# DBT_REAL_CACHE, default /work/cache/dbt-real, filled by real/fill_cache.py from git
# mirrors at the tags pinned in real/pins.json. Without the cache this says so and exits 0.
# Prints one figure per run and the total; it is a measurement, not a gate (exit 0 unless
# the tooling itself fails). Outputs: target/conformance-real/ (gitignored).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CACHE="${DBT_REAL_CACHE:-/work/cache/dbt-real}"
if [ ! -d "$CACHE/packages" ]; then
    echo "conformance-real: skipped: no cache at $CACHE (fill it with conformance/real/fill_cache.py)"
    exit 0
fi

real_args=()
compare_args=(--quiet)
while [ $# -gt 0 ]; do
    case "$1" in
        --only) real_args+=(--only "$2"); shift 2 ;;
        --refresh) real_args+=(--refresh); shift ;;
        --details) compare_args=(); shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

OUT="$REPO_ROOT/target/conformance-real"
mkdir -p "$OUT"
ensure_dbt_venv
ensure_postgres
# runs of projects written for another warehouse (runs.json `adapter`) need the adapters' oracle
if grep -q '"adapter"' "$CONF_DIR/real/runs.json"; then ensure_adapters_venv; fi
build_backflow_dbt

"$PYTHON" "$CONF_DIR/real.py" --cache "$CACHE" --out "$OUT" \
    --dbt "$DBT" --dbt-adapters-python "$ADAPTERS_PY" --backflow "$BACKFLOW_DBT_BIN" "${real_args[@]}"
"$PYTHON" "$CONF_DIR/compare.py" --index "$OUT/index.json" "${compare_args[@]}" | sed 's/^conformance:/conformance-real:/' || true
