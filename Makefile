# One target per job; the README and CI (.ci/run) use these same targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Python 3.11 or newer: the oldest found first (the Lambda runtime's code is written for 3.11+).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STACK_NAME ?= CaseLinker

# Keep the CDK CLI and jsii quiet and offline.
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help install install-demo install-cdk lint test pytest demo synth deploy destroy bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Besides the pinned set, an older boto3/botocore apart in runtime-oldest/: a test runs the handler on it, as
# on a Lambda runtime older than our pin.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-demo.txt requirements-runtime-oldest.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
		--target $(VENV)/runtime-oldest -r requirements-runtime-oldest.txt
	touch $@ $(VENV)/.demo-installed

# The demo (and the operator tool) need a fraction of the above: no CDK, no linters, no test tools.
$(VENV)/.demo-installed: requirements-demo.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-demo.txt
	touch $@

install: $(VENV)/.installed ## create .venv and install every pinned dependency (tests, linters, CDK)

install-demo: $(VENV)/.demo-installed ## create .venv with only what `make demo` needs

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install-cdk: node_modules/.installed ## install the pinned CDK CLI (npx cdk)

lint: install ## ruff (lint + format check) and mypy over everything
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# Two workers (the machines have two cores); a test module stays on one worker, so its module-scoped fixtures
# (a chaos run, a synthesized template) are built once.
pytest: install ## the test suite only
	$(PY) -m pytest -n 2 --dist loadfile

test: lint pytest ## what CI runs: lint, type check, every test

demo: install-demo ## run the whole pipeline locally on moto + the emulator
	$(PY) -m local $(ARGS)

synth: install install-cdk ## synthesize the CloudFormation template (offline, no Docker)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx cdk synth --no-notices --quiet $(CDK_ARGS)

deploy: install install-cdk ## cdk deploy (needs AWS credentials and -c context, see README)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx cdk deploy --no-notices $(CDK_ARGS)

destroy: install install-cdk ## cdk destroy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx cdk destroy --no-notices $(CDK_ARGS)

bench: install ## benchmarks: writes bench/results.json and prints a table
	$(PY) -m bench $(ARGS)

chaos: install ## fault-injection run of the local pipeline; writes a JSON report
	$(PY) -m local.chaos $(ARGS)

clean: ## remove generated files (keeps .venv)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
