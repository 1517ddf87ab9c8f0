# Every command a person runs. `make dev` and `make test` are the two that matter.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
CARGO ?= cargo

.PHONY: help dev test test-rust lint venv clean routes

help:
	@echo "make dev    run Tenantry locally (local AWS endpoint + API on a loopback port)"
	@echo "make test   install what the tests need and run every test"

# The local AWS endpoint (moto in server mode) lives in a project virtualenv.
$(VENV_STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV_STAMP)

test: test-rust test-infra

test-rust: venv
	$(CARGO) test --workspace --locked

dev: venv
	$(CARGO) run --locked --quiet -p local-runner -- $(ARGS)

# The route manifest the infrastructure integrates (generated from the route tables).
routes:
	$(CARGO) run --locked --quiet -p local-runner --bin tenantry-routes > infra/routes.json

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

clean:
	rm -rf $(VENV) target

# --- infrastructure (infra/: AWS CDK app) -----------------------------------------------
.PHONY: test-infra
test-infra:
	@echo "infrastructure tests: none yet"
# --- end infrastructure ----------------------------------------------------------------
