# Shared helpers for conformance/run.sh and conformance/bench.sh (sourced, not executed).
# Everything lives under the repository root; nothing here needs secrets.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF_DIR="$REPO_ROOT/conformance"
VENV="$REPO_ROOT/.venv-dbt"                 # gitignored (/.venv*)
DBT="$VENV/bin/dbt"
ADAPTERS_VENV="$REPO_ROOT/.venv-dbt-adapters"   # gitignored: dbt-<adapter> 1.7.x oracles
ADAPTERS_PY="$ADAPTERS_VENV/bin/python"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target-dbt}"   # gitignored (/target-*)
# BACKFLOW_DBT_BIN may point at a prebuilt binary (then nothing is built).
PREBUILT_BACKFLOW_DBT="${BACKFLOW_DBT_BIN:-}"
BACKFLOW_DBT_BIN="${BACKFLOW_DBT_BIN:-$CARGO_TARGET_DIR/release/backflow-dbt}"
PYTHON="${PYTHON:-python3}"

# dbt should not phone home or nag about versions.
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
export DBT_VERSION_CHECK=false
# A fixed hash seed makes the dbt oracles reproducible: a template looping over `set(...)` /
# `set_strict(...)` (a Python set of strings) otherwise comes out in a different order in
# each dbt process (dbt_project_evaluator's int_all_graph_resources does).
export PYTHONHASHSEED=0

log() { printf '[conformance] %s\n' "$*" >&2; }

# Create .venv-dbt with dbt-core 1.7.20 + dbt-postgres 1.7.20 from PyPI unless it already
# has exactly that version. Pins live in conformance/requirements-dbt.txt.
ensure_dbt_venv() {
    if [ -x "$DBT" ] && "$VENV/bin/python" -c 'import dbt.version, sys; sys.exit(0 if dbt.version.__version__ == "1.7.20" else 1)' 2>/dev/null; then
        return 0
    fi
    log "creating $VENV with dbt-core 1.7.20 + dbt-postgres 1.7.20 (PyPI)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$CONF_DIR/requirements-dbt.txt"
    "$DBT" --version >/dev/null
}

# Create .venv-dbt-adapters with dbt-core 1.7.20 + dbt-redshift / dbt-snowflake / dbt-bigquery /
# dbt-databricks 1.7.x (pins: conformance/requirements-dbt-adapters.txt) unless it has them.
# Separate from .venv-dbt so the postgres oracle stays exactly as it was.
ensure_adapters_venv() {
    if [ -x "$ADAPTERS_PY" ] && "$ADAPTERS_PY" -c '
import sys, dbt.version
import dbt.adapters.snowflake, dbt.adapters.bigquery, dbt.adapters.databricks, dbt.adapters.redshift
sys.exit(0 if dbt.version.__version__ == "1.7.20" else 1)' 2>/dev/null; then
        return 0
    fi
    log "creating $ADAPTERS_VENV with dbt-core 1.7.20 + dbt-{redshift,snowflake,bigquery,databricks} 1.7 (PyPI)"
    rm -rf "$ADAPTERS_VENV"
    "$PYTHON" -m venv "$ADAPTERS_VENV"
    "$ADAPTERS_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
    "$ADAPTERS_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$CONF_DIR/requirements-dbt-adapters.txt"
}

# Make sure the local PostgreSQL answers on 127.0.0.1:5432 and that the `warehouse`
# database exists (it is the profiles' dbname, i.e. dbt's target.database).
ensure_postgres() {
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        log "starting PostgreSQL"
        local ver
        ver="$(ls /etc/postgresql | sort -V | tail -n1)"
        pg_ctlcluster --skip-systemctl-redirect "$ver" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; return 1; }
    if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'warehouse'" | grep -q 1; then
        log "creating database warehouse"
        psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database warehouse'
    fi
}

# Build the engine's CLI (release). Fails loudly if the crate does not build yet.
build_backflow_dbt() {
    if [ -n "$PREBUILT_BACKFLOW_DBT" ]; then
        log "using prebuilt $BACKFLOW_DBT_BIN"
        return 0
    fi
    log "building backflow-dbt (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$REPO_ROOT" && cargo build --quiet --release -p backflow-dbt --bin backflow-dbt)
}
