# Backflow — the commands a newcomer needs:
#   make demo   the product end to end on local parts (dbt project in Git → PostgreSQL → webhook)
#   make dev    run every service in one process with embedded defaults
#   make test   everything CI checks (fmt, clippy, unit, contract and cross-service tests)
#   make doc    the retl scheduler's API docs build with no broken intra-doc link

SHELL := /bin/bash
CARGO ?= cargo
NATS_URL ?= 127.0.0.1:4222
NATS_HOST := $(firstword $(subst :, ,$(NATS_URL)))
NATS_PORT := $(lastword $(subst :, ,$(NATS_URL)))
PG_HOST ?= 127.0.0.1

.PHONY: demo drt dev test check fmt clippy doc unit deps services-up nats-up postgres-up conformance conformance-refresh conformance-real bench k8s release clean

## Install what is missing (Debian packages; Rust comes from rustup). Each package is
## named with what it is for before anything is installed.
deps:
	@missing=""; why=""; \
	need() { if ! eval "$$2" >/dev/null 2>&1; then missing="$$missing $$1"; why="$$why  $$1: $$3\n"; fi; }; \
	need nats-server       "command -v nats-server"         "NATS JetStream, the message bus between the services (make dev, tests)"; \
	need git               "command -v git"                 "git client, used by git-sync to fetch dbt projects"; \
	need openssh-server    "[ -x /usr/sbin/sshd ]"          "sshd, the test git server for SSH connections (tests)"; \
	need openssh-client    "command -v ssh-keygen"          "ssh and ssh-keygen, for SSH git connections and their tests"; \
	need postgresql-client "command -v pg_isready"          "pg_isready, to check that PostgreSQL is up (tests)"; \
	need postgresql        "ls /usr/lib/postgresql/*/bin/initdb" "PostgreSQL server: the local cluster make postgres-up starts, and initdb/pg_ctl for tests that run a private server"; \
	need jq                "command -v jq"                  "jq, to read the CLI's JSON output in make demo"; \
	need pkg-config        "command -v pkg-config"          "pkg-config, to find system libraries when building"; \
	need libssl-dev        "[ -f /usr/include/openssl/ssl.h ]" "OpenSSL headers, to build the git transport"; \
	if [ -n "$$missing" ]; then \
	  printf "installing Debian packages with apt-get:\n$$why"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

## Start NATS with JetStream on loopback unless something already listens there.
## (Host and port are make variables: the recipe's shell does not see NATS_URL.)
nats-up: deps
	@if ! (exec 3<>/dev/tcp/$(NATS_HOST)/$(NATS_PORT)) 2>/dev/null; then \
	  echo "starting nats-server with jetstream on $(NATS_HOST):$(NATS_PORT)"; \
	  mkdir -p /var/lib/nats-server 2>/dev/null || true; \
	  start-stop-daemon --start --oknodo --background --make-pidfile --pidfile /tmp/backflow-nats-$(NATS_PORT).pid --exec "$$(command -v nats-server)" -- \
	    -a $(NATS_HOST) -p $(NATS_PORT) -js -sd /var/lib/nats-server; \
	  for i in $$(seq 50); do (exec 3<>/dev/tcp/$(NATS_HOST)/$(NATS_PORT)) 2>/dev/null && break; sleep 0.1; done; \
	fi

## Start the local PostgreSQL cluster unless it is already up (tests use it), then check
## that user postgres gets in without a password (trust auth), as the tests connect.
postgres-up: deps
	@if ! pg_isready -q -h $(PG_HOST); then \
	  echo "starting postgresql"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n 1) main start; \
	  for i in $$(seq 50); do pg_isready -q -h $(PG_HOST) && break; sleep 0.2; done; \
	fi
	@if ! psql -h $(PG_HOST) -U postgres -w -d postgres -Atqc 'select 1' >/dev/null 2>&1; then \
	  echo "PostgreSQL on $(PG_HOST) does not let user postgres in without a password; the tests need trust auth:" >&2; \
	  echo "  add 'host all postgres $(PG_HOST)/32 trust' at the top of pg_hba.conf (psql -U postgres -c 'show hba_file'), then reload" >&2; \
	  exit 1; \
	fi

services-up: nats-up postgres-up

## The demo: a dbt project in a local Git repository, its tables in the local PostgreSQL,
## a Reverse ETL sync to a local webhook receiver that prints what arrives; then a change
## in the warehouse and a second run that sends only the change (demo/run.sh).
demo: services-up deps
	demo/run.sh

dev: nats-up
	$(CARGO) run -p backflow -- dev

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## API docs build without a broken intra-doc link or stray HTML tag (not part of make test).
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p backflow-retl-scheduler --no-deps

unit: services-up deps
	$(CARGO) test --workspace

test: services-up fmt clippy unit

## dbt conformance against dbt-core 1.7.20 (installs it in .venv-dbt from PyPI).
conformance: postgres-up
	conformance/run.sh

## Re-run dbt (every adapter) and rewrite the committed expected outputs (conformance/expected/).
conformance-refresh: postgres-up
	conformance/run.sh --refresh

## the same comparison on real packages and public projects from a local cache (skips without it)
conformance-real: postgres-up
	conformance/real.sh

## drt (PyPI drt-core 1.2.1, the open-source peer the sync bench compares with), installed
## from PyPI into .venv-drt; a failed install leaves the sync bench saying so.
DRT_VERSION := 1.2.1
drt: deps
	@if [ ! -x .venv-drt/bin/drt ] || ! .venv-drt/bin/drt --version 2>/dev/null | grep -q "$(DRT_VERSION)"; then \
	  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then \
	    echo "installing python3-venv with apt-get (Python virtual environments, for drt)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv || true; \
	  fi; \
	  echo "installing drt-core[postgres]==$(DRT_VERSION) from PyPI into .venv-drt (for the sync bench's comparison)"; \
	  python3 -m venv .venv-drt && .venv-drt/bin/pip install -q "drt-core[postgres]==$(DRT_VERSION)" \
	    || echo "drt could not be installed; the sync bench will say so and print the rest"; \
	fi

## Benchmarks: dbt engine vs dbt-core (same run), push webhook → catalog latency,
## warehouse streaming vs raw COPY and preview latency vs sqlx, the Backflow-side diff at
## 10M keys, webhook delivery, and the sync bench (1M rows PostgreSQL → HTTP vs raw COPY
## and vs drt). Benches build in release (cargo's bench profile).
bench: services-up deps drt
	conformance/bench.sh
	$(CARGO) bench -p backflow-tests --bench push_to_catalog
	$(CARGO) bench -p backflow-tests --bench dbt_triggers
	$(CARGO) bench -p backflow-warehouse --bench stream
	$(CARGO) bench -p backflow-retl-scheduler --bench diff
	$(CARGO) bench -p backflow-retl-scheduler --bench webhook_delivery
	$(CARGO) bench -p backflow-retl-scheduler --bench sync
	$(CARGO) bench -p backflow-retl-scheduler --bench warehouse_diff

## Render the Kubernetes manifests.
k8s:
	@command -v kubectl >/dev/null || (apt-get update -qq && apt-get install -y -qq kubectl)
	kubectl kustomize deploy/k8s/overlays/dev

release:
	$(CARGO) build --release -p backflow

clean:
	$(CARGO) clean
	rm -rf data
