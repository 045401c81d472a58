#!/usr/bin/env bash
# `make demo`: Backflow end to end on local parts, driven with the `backflow` CLI against
# `backflow dev`:
#   a dbt project (demo/project) in a local Git repository, served over smart HTTP
#   → its raw data in the local PostgreSQL (demo/warehouse.sql), the model built as dbt
#     would (a view from the SQL Backflow compiled)
#   → a warehouse source, a Git connection, the catalog's models, a Reverse ETL model
#   → a webhook destination (a local receiver that checks the Standard Webhooks
#     signature and prints each batch) and an upsert sync, run once: every row arrives
#   → a change in the warehouse (demo/change.sql) and a second run: only the change arrives.
#
# Needs NATS on 127.0.0.1:4222 and PostgreSQL on 127.0.0.1:5432 (user postgres, trust);
# `make demo` starts both. Everything the demo makes lives in a temporary directory and
# the database $DEMO_DB (default backflow_demo, dropped and re-created), removed at the
# end unless DEMO_KEEP=1. DEMO_BACKFLOW_BIN and DEMO_PARTS_BIN name prebuilt binaries (the
# test in services/all-in-one/tests/demo.rs passes them); otherwise they are built here.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"
DEMO_DB="${DEMO_DB:-backflow_demo}"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
PGOPTIONS="-c client_min_messages=warning"
export PGHOST PGPORT PGUSER PGOPTIONS
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
case "$NATS_URL" in *://*) ;; *) NATS_URL="nats://$NATS_URL" ;; esac

if [ -t 1 ]; then
  step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  step() { printf '\n== %s\n' "$*"; }
fi
say() { printf '$ %s\n' "$*"; }

if [ -z "${DEMO_BACKFLOW_BIN:-}" ] || [ -z "${DEMO_PARTS_BIN:-}" ]; then
  step "building backflow and the demo's local parts (cargo build)"
  (cd "$repo_root" && cargo build -q -p backflow --bin backflow --example demo_parts)
  target_dir="$(cd "$repo_root" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
  DEMO_BACKFLOW_BIN="${DEMO_BACKFLOW_BIN:-$target_dir/debug/backflow}"
  DEMO_PARTS_BIN="${DEMO_PARTS_BIN:-$target_dir/debug/examples/demo_parts}"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/backflow-demo.XXXXXX")"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo "kept: $work and database $DEMO_DB"
  else
    rm -rf "$work"
    psql -q -d postgres -c "drop database if exists \"$DEMO_DB\" with (force)" >/dev/null 2>&1 || true
  fi
  if [ "$status" -ne 0 ]; then
    echo "demo failed (exit $status); backflow dev's log was $work/dev.log" >&2
  fi
  exit "$status"
}
trap cleanup EXIT

# Waits up to 60 s for a file to exist.
wait_for_file() {
  for _ in $(seq 600); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2
  return 1
}

# backflow CLI, run where `backflow dev` writes ./data/cli.json (address, dev admin token).
backflow() { (cd "$work/dev" && "$DEMO_BACKFLOW_BIN" "$@"); }
# The same with --output json, one field out of the answer.
backflow_field() {
  local field="$1"; shift
  backflow "$@" --output json | jq -er ".$field"
}

received_lines=0
# Prints what the receiver got since the last call.
show_received() {
  local total
  total=$(wc -l < "$work/receiver.log")
  if [ "$total" -gt "$received_lines" ]; then
    sed -n "$((received_lines + 1)),${total}p" "$work/receiver.log"
  else
    echo "(nothing arrived)"
  fi
  received_lines=$total
}

step "1. a dbt project in a local Git repository"
mkdir -p "$work/git" "$work/scratch" "$work/dev"
git init -q --bare -b main "$work/git/shop.git"
cp -r "$here/project/." "$work/scratch/"
(
  cd "$work/scratch"
  git init -q -b main
  git -c user.name=demo -c user.email=demo@example.com add -A
  git -c user.name=demo -c user.email=demo@example.com commit -q -m "a small dbt project"
  git push -q "$work/git/shop.git" main
)
find "$work/scratch" -path "$work/scratch/.git" -prune -o -type f -print | sed "s|$work/scratch/|  |" | sort
head -c 32 /dev/urandom | base64 | tr -d '=+/' | head -c 40 > "$work/git-token"
"$DEMO_PARTS_BIN" git --root "$work/git" --token-file "$work/git-token" --addr-file "$work/git.addr" 2>"$work/git.log" &
pids+=($!)
wait_for_file "$work/git.addr"
git_url="http://$(cat "$work/git.addr")/shop.git"
echo "served over smart HTTP at $git_url (token auth)"

step "2. its raw data in the local PostgreSQL (database $DEMO_DB)"
psql -q -d postgres -c "drop database if exists \"$DEMO_DB\" with (force)" >/dev/null
psql -q -d postgres -c "create database \"$DEMO_DB\"" >/dev/null
psql -q -v ON_ERROR_STOP=1 -d "$DEMO_DB" -f "$here/warehouse.sql"
psql -d "$DEMO_DB" -c "select * from raw.customers order by id"

step "3. a local webhook receiver (prints what arrives)"
echo "whsec_$(head -c 24 /dev/urandom | base64)" > "$work/webhook-secret"
"$DEMO_PARTS_BIN" receiver --addr-file "$work/receiver.addr" --secret-file "$work/webhook-secret" >"$work/receiver.log" 2>&1 &
pids+=($!)
wait_for_file "$work/receiver.addr"
hook_url="http://$(cat "$work/receiver.addr")/hook"
echo "listening at $hook_url"

step "4. backflow dev (every service in one process; its own NATS namespace and ports)"
(
  cd "$work/dev"
  export BACKFLOW_NATS__URL="$NATS_URL"
  export BACKFLOW_NATS__NAMESPACE="demo$(date +%s)$$"
  export BACKFLOW_FRONT_DOOR__LISTEN=127.0.0.1:0
  export BACKFLOW_TELEMETRY__METRICS_LISTEN=127.0.0.1:0
  export BACKFLOW_GIT_SYNC__HTTP_LISTEN=127.0.0.1:0
  export BACKFLOW_DBT_CLOUD_LISTENER__HTTP_LISTEN=127.0.0.1:0
  for section in CREDENTIALS GIT_SYNC MODEL_CATALOG DBT_CLOUD_LISTENER RETL_SCHEDULER; do
    export "BACKFLOW_${section}__GRPC_LISTEN=127.0.0.1:0"
  done
  bin="$DEMO_BACKFLOW_BIN"
  unset BACKFLOW_CONFIG BACKFLOW_ADDR BACKFLOW_TOKEN BACKFLOW_WORKSPACE BACKFLOW_CLI_CONFIG
  exec "$bin" dev >"$work/dev.log" 2>&1
) &
pids+=($!)
for _ in $(seq 600); do grep -q "^backflow: ready" "$work/dev.log" 2>/dev/null && break; sleep 0.1; done
grep -q "^backflow: ready" "$work/dev.log" || { echo "backflow dev did not start:" >&2; tail -20 "$work/dev.log" >&2; exit 1; }
grep "^backflow: ready" "$work/dev.log"
unset BACKFLOW_ADDR BACKFLOW_TOKEN BACKFLOW_WORKSPACE BACKFLOW_CLI_CONFIG

step "5. secrets, the warehouse source, the Git connection"
printf 'unused-with-trust-auth\n' > "$work/warehouse-password"
say "backflow secrets create shop-git-token --kind git-token --attribute username=x-access-token --material-file git-token"
git_secret=$(backflow_field id secrets create shop-git-token --kind git-token --attribute username=x-access-token --material-file "$work/git-token")
say "backflow secrets create shop-warehouse-password --kind warehouse-password --material-file warehouse-password"
pw_secret=$(backflow_field id secrets create shop-warehouse-password --kind warehouse-password --material-file "$work/warehouse-password")
say "backflow sources create shop-warehouse --kind postgres --setting host=$PGHOST --setting port=$PGPORT --setting database=$DEMO_DB --setting user=$PGUSER --setting sslmode=disable --credential $pw_secret"
source_id=$(backflow_field id sources create shop-warehouse --kind postgres \
  --setting "host=$PGHOST" --setting "port=$PGPORT" --setting "database=$DEMO_DB" \
  --setting "user=$PGUSER" --setting sslmode=disable --credential "$pw_secret")
backflow sources get "$source_id"
say "backflow connections create shop --url $git_url --provider generic --schema analytics --credential $git_secret --warehouse-source $source_id"
connection=$(backflow connections create shop --url "$git_url" --provider generic \
  --schema analytics --credential "$git_secret" --warehouse-source "$source_id" --output json)
connection_id=$(jq -er .connection.id <<<"$connection")
initial_run=$(jq -er .run.id <<<"$connection")
echo "connection $connection_id; its first sync is run $initial_run"
say "backflow runs watch $initial_run"
backflow runs watch "$initial_run" --timeout-seconds 120 >/dev/null
backflow runs get "$initial_run" | grep -E "^(status|commit|models)" || true

step "6. the catalog's models; the model built in the warehouse as dbt would"
for _ in $(seq 100); do
  [ "$(backflow models list "$connection_id" --output json | jq '.models | length')" -gt 0 ] && break
  sleep 0.2
done
say "backflow models list $connection_id"
backflow models list "$connection_id"
compiled=$(backflow models get "$connection_id" customers --output json | jq -er .compiled_sql)
echo "compiled SQL of customers:"
printf '%s\n' "$compiled" | sed 's/^/  /'
# dbt run's part (Backflow reads dbt's results; it does not run dbt): the model as a view.
psql -q -v ON_ERROR_STOP=1 -d "$DEMO_DB" -c "create schema analytics" \
  -c "create view analytics.customers as $compiled"
say "backflow models preview $connection_id customers --source $source_id"
backflow models preview "$connection_id" customers --source "$source_id"

step "7. a Reverse ETL model, a webhook destination, an upsert sync"
say "backflow retl-models create customers --connection $connection_id --model customers --key id --source $source_id"
retl_model=$(backflow_field id retl-models create customers --connection "$connection_id" \
  --model customers --key id --source "$source_id")
say "backflow secrets create receiver-signing-secret --kind webhook-secret --material-file webhook-secret"
hook_secret=$(backflow_field id secrets create receiver-signing-secret --kind webhook-secret --material-file "$work/webhook-secret")
say "backflow destinations create receiver --kind webhook --setting url=$hook_url --credential $hook_secret"
destination=$(backflow_field id destinations create receiver --kind webhook --setting "url=$hook_url" --credential "$hook_secret")
show_received
say "backflow syncs create customers-to-receiver --model $retl_model --destination $destination --mode upsert --map email --map full_name=name --map plan --map lifetime_value"
sync_id=$(backflow_field id syncs create customers-to-receiver --model "$retl_model" --destination "$destination" \
  --mode upsert --map email --map full_name=name --map plan --map lifetime_value)
backflow syncs get "$sync_id"

step "8. first run: every row arrives"
say "backflow syncs trigger $sync_id"
run1=$(backflow_field id syncs trigger "$sync_id")
say "backflow runs watch $run1"
backflow runs watch "$run1"
echo "the receiver got:"
show_received

step "9. a change in the warehouse"
cat "$here/change.sql"
psql -q -v ON_ERROR_STOP=1 -d "$DEMO_DB" -f "$here/change.sql"

step "10. second run: only the change arrives"
say "backflow syncs trigger $sync_id"
run2=$(backflow_field id syncs trigger "$sync_id")
say "backflow runs watch $run2"
backflow runs watch "$run2"
echo "the receiver got:"
show_received

step "done: the demo worked end to end"
