# One entry point for people and CI. Every target sets up what it needs by itself.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?= dev
STAGE = $(if $(filter prod,$(ENV)),Prod,$(if $(filter dev,$(ENV)),Dev,$(error ENV must be dev or prod, got '$(ENV)')))
CDK := npx --no-install cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
PY_SOURCES := app.py stacks constructs_lib lambdas tests benchmarks dashboard_app localworld \
	scripts .github/scripts

.PHONY: help setup browser test lint format synth diff deploy bench demo dashboard dashboard-stop clean

help:
	@echo "make test            install everything, then lint, type-check and run every test"
	@echo "make synth           synthesize dev and prod into cdk.out/ with cdk-nag on (no AWS needed)"
	@echo "make diff ENV=dev    cdk diff of one environment against what is deployed"
	@echo "make deploy ENV=dev  deploy one environment"
	@echo "make lint / format   ruff + mypy / apply ruff formatting"
	@echo "make bench           run benchmarks, results in benchmarks/results/"
	@echo "make demo            run the synthesized state machine locally (moto), no AWS needed;"
	@echo "                     make demo SERVE=1 keeps the world up for make dashboard"
	@echo "make dashboard       Streamlit dashboard against the local world"

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

# The dashboard's real-browser test needs Chromium (Debian package); it skips with a printed
# reason where it cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium unavailable: the browser test will skip"

test: setup lint browser
	$(BIN)/pytest

# Both environments unless ENV is given on the command line (make synth ENV=prod).
SYNTH_CONTEXT = $(if $(filter command line,$(origin ENV)),-c env=$(ENV),)

synth: setup
	rm -rf cdk.out
	$(CDK) synth --quiet $(SYNTH_CONTEXT)
	$(BIN)/python scripts/synth_summary.py cdk.out

diff: setup
	$(CDK) diff '$(STAGE)/*'

deploy: setup
	$(CDK) deploy '$(STAGE)/*' --require-approval never

bench: setup
	mkdir -p benchmarks/results
	@status=0; for b in benchmarks/*.py; do case $$b in */_*|*/__init__.py) continue;; esac; \
	  m=$$(basename $$b .py); echo "== benchmarks.$$m"; \
	  $(BIN)/python -m benchmarks.$$m || { echo "!! $$m missed its target or failed"; status=1; }; \
	done; exit $$status

demo: setup
	mkdir -p .demo
	$(BIN)/python scripts/demo.py --world .demo/world.json $(if $(SERVE),--serve)

dashboard: setup
	$(BIN)/python scripts/dashboard_world.py ensure --world .demo/world.json
	MEDIA_PIPELINE_WORLD=.demo/world.json $(BIN)/streamlit run dashboard_app/app.py \
	  --server.address 127.0.0.1 --browser.gatherUsageStats false

dashboard-stop:
	$(BIN)/python scripts/dashboard_world.py stop --world .demo/world.json

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
