#!/usr/bin/env bash
# `make bench`: Backflow's dbt engine vs dbt-core 1.7.20 on a generated project
# (issue 3, acceptance points 3-4). Prints one table; see crates/dbt/benches/parse.rs.
#
#   bash conformance/bench.sh                 # 300 + 3,000 models, dbt parse and dbt compile
#   BENCH_DBT_COMPILE=0 bash conformance/bench.sh   # skip `dbt compile` (needs PostgreSQL)
#   BENCH_SKIP_DBT=1 bash conformance/bench.sh      # Backflow only (no venv needed)
#   BENCH_ENFORCE=1 ...                              # exit 1 when a target is missed
#
# Projects are generated under target/bench/ (gitignored), deterministically.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export BENCH_DIR="${BENCH_DIR:-$REPO_ROOT/target/bench}"
export BENCH_SIZES="${BENCH_SIZES:-300,3000}"
export BENCH_DBT="$DBT"

# Regenerate every time: cheap (< 2 s) and guarantees the files match the generator.
IFS=',' read -ra sizes <<<"$BENCH_SIZES"
for n in "${sizes[@]}"; do
    "$PYTHON" "$CONF_DIR/gen_project.py" --models "$n" --out "$BENCH_DIR/project_$n" >&2
done

if [ "${BENCH_SKIP_DBT:-0}" != 1 ]; then
    ensure_dbt_venv
    if [ "${BENCH_DBT_COMPILE:-1}" != 0 ]; then ensure_postgres; fi
fi

cd "$REPO_ROOT"
exec cargo bench --quiet -p backflow-dbt --bench parse
