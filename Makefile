# One entry point for people and CI. Every target sets up what it needs by itself.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?= dev
# Loopback ports of the local world (moto server) and the dashboard (Streamlit).
WORLD_PORT ?= 5055
DASHBOARD_PORT ?= 8501
WORLD_FILE := .demo/world.json
STAGE = $(if $(filter prod,$(ENV)),Prod,$(if $(filter dev,$(ENV)),Dev,$(error ENV must be dev or prod, got '$(ENV)')))
CDK := npx --no-install cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
PY_SOURCES := app.py stacks constructs_lib lambdas tests benchmarks dashboard_app localworld media_upload \
	scripts .github/scripts

.PHONY: help setup browser test lint format synth diff deploy redrive bench demo dashboard stop \
	dashboard-stop clean

help:
	@echo "make test            install everything, then lint, type-check and run every test"
	@echo "make synth           synthesize dev and prod into cdk.out/ with cdk-nag on (no AWS needed)"
	@echo "make diff ENV=dev    cdk diff of one environment against what is deployed"
	@echo "make deploy ENV=dev  deploy one environment"
	@echo "make lint / format   ruff + mypy / apply ruff formatting"
	@echo "make redrive ENV=dev QUEUE=<name> [APPLY=1]"
	@echo "                     dead-letter queue back to its targets (a dry run unless APPLY=1)"
	@echo "make bench           run benchmarks, results in benchmarks/results/"
	@echo "make demo            run the synthesized state machine locally (moto), no AWS needed;"
	@echo "                     make demo SERVE=1 keeps the world up on 127.0.0.1:$(WORLD_PORT)"
	@echo "make dashboard       Streamlit dashboard (127.0.0.1:$(DASHBOARD_PORT)) against the local"
	@echo "                     world, started in the background unless one is up"
	@echo "make stop            stop the dashboard and the world that make started"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

lint: setup
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy $(PY_SOURCES)

format: setup
	$(BIN)/ruff check --fix $(PY_SOURCES)
	$(BIN)/ruff format $(PY_SOURCES)

# The dashboard's real-browser test needs Chromium or Chrome (CHROMIUM names the binary; found on
# PATH otherwise). make test installs the Debian package when none is there, and fails here with
# the reason if it cannot.
CHROMIUM ?= $(firstword $(foreach b,chromium google-chrome chromium-browser,\
	$(shell command -v $(b) 2>/dev/null)) chromium)
export CHROMIUM
browser:
	@command -v "$(CHROMIUM)" >/dev/null 2>&1 \
	  || { echo "installing Chromium for the dashboard's browser test (apt-get install chromium)"; \
	       sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	       $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium >/dev/null; } \
	  || true
	@command -v "$(CHROMIUM)" >/dev/null 2>&1 || { \
	  echo "error: make test needs Chromium for tests/dashboard/test_browser.py, and it is not" \
	       "installed: 'apt-get install chromium' failed (no root or sudo, not Debian/Ubuntu, or" \
	       "no network). Install it yourself (sudo apt-get install chromium), or point" \
	       "CHROMIUM=/path/to/chrome at a Chrome/Chromium binary." >&2; exit 1; }

test: setup lint browser
	$(BIN)/pytest

# Both environments unless ENV is given on the command line (make synth ENV=prod). A given ENV
# goes through STAGE's check, which make expands before the recipe's first line runs: an unknown
# environment fails like `make diff` does, before cdk.out is removed.
SYNTH_CONTEXT = $(if $(filter command line,$(origin ENV)),$(if $(STAGE),-c env=$(ENV)),)

synth: setup
	rm -rf cdk.out
	$(CDK) synth --quiet $(SYNTH_CONTEXT)
	$(BIN)/python scripts/synth_summary.py cdk.out

diff: setup
	$(CDK) diff '$(STAGE)/*'

deploy: setup
	$(CDK) deploy '$(STAGE)/*' --require-approval never

# A dead-letter queue back to its targets: a dry run unless APPLY=1 (each message at most once).
# WORLD=.demo/world.json redrives the local demo world's queues instead of a deployment's.
redrive: setup
	@test -n "$(QUEUE)" || { echo "error: name the queue: make redrive ENV=$(ENV) QUEUE=<name>" \
	  "(the queues are in the DeadLetterQueues output of $(STAGE)-Monitoring)" >&2; exit 2; }
	PYTHONPATH=. $(BIN)/python scripts/redrive.py --env $(ENV) --queue '$(QUEUE)' \
	  $(if $(APPLY),--apply) $(if $(WORLD),--world $(WORLD))

bench: setup
	mkdir -p benchmarks/results
	@status=0; for b in benchmarks/*.py; do case $$b in */_*|*/__init__.py) continue;; esac; \
	  m=$$(basename $$b .py); echo "== benchmarks.$$m"; \
	  $(BIN)/python -m benchmarks.$$m || { echo "!! $$m missed its target or failed"; status=1; }; \
	done; exit $$status

# SERVE=1 keeps the world up on 127.0.0.1:$(WORLD_PORT) (WORLD_PORT=0: any free port) until
# Ctrl-C or make stop; a busy port fails at once with its number.
demo: setup
	$(BIN)/python scripts/demo.py --world $(WORLD_FILE) --port $(WORLD_PORT) $(if $(SERVE),--serve)

# Reuses the world in $(WORLD_FILE) when it answers, else starts the demo world in the
# background (log in .demo/world.log) and waits for it; then Streamlit in the foreground.
dashboard: setup
	$(BIN)/python scripts/dashboard_world.py dashboard --world $(WORLD_FILE) \
	  --world-port $(WORLD_PORT) --port $(DASHBOARD_PORT)

# Stops the dashboard and the world that make demo SERVE=1 / make dashboard started.
stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python scripts/dashboard_world.py stop --world $(WORLD_FILE); \
	  else echo "Nothing to stop (no $(VENV))."; fi

dashboard-stop: stop

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
