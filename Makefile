# Every command a person runs. `make dev` and `make test` are the two that matter.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
CARGO ?= cargo
# The typed client and the web console (npm packages; see `make client`, `make console`).
CLIENT := shared/client
CLIENT_STAMP := $(CLIENT)/node_modules/.installed
CONSOLE := shared/console
CONSOLE_STAMP := $(CONSOLE)/node_modules/.installed

.PHONY: help dev demo test test-local-aws test-rust test-demo contract chromium lint venv clean manifest fuzz soak cost-check fuzz-api client test-client console

help:
	@echo "make dev    run Tenantry locally (local AWS endpoint + API on a loopback port)"
	@echo "make test   install what the tests need and run every test"

# The local AWS endpoint (moto in server mode) lives in a project virtualenv.
$(VENV_STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV_STAMP)

test: test-local-aws test-rust test-infra test-client test-demo

# The local AWS endpoint's wrapper (shared/testkit/local_aws.py) has tests of its own: the
# ways it makes the endpoint behave like AWS (atomic transactions at a cost independent of the
# table's size, DynamoDB's consumed capacity by item size, complete S3 event records, presigned requests verified as S3 verifies them,
# S3 Vectors' QueryVectors), and the fake Bedrock runtime it mounts (fake_bedrock.py); and the
# bill `make cost-check` prices by hand (cost_bill.py).
test-local-aws: venv
	$(VENV)/bin/python -B -m unittest shared/testkit/local_aws_test.py shared/testkit/fake_bedrock_test.py shared/local-runner/cost_bill_test.py

test-rust: venv
	$(CARGO) test --workspace --locked

dev: venv
	$(CARGO) run --locked --quiet -p local-runner --bin tenantry-local

# A walk through the API against the running `make dev` (TENANTRY_URL to point elsewhere).
demo:
	shared/local-runner/demo.sh

# The OpenAPI document against the running `make dev` with Schemathesis (TENANTRY_URL to point
# elsewhere).
contract: venv
	$(VENV)/bin/python shared/local-runner/contract_check.py

# Headless Chromium for the docs page test (Debian's package; installed when missing).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
		else echo "install Chromium (Debian: sudo apt-get install chromium)" >&2; exit 1; fi; }

# End to end: the local stack as `make dev` starts it, `make demo` against it, the docs page
# and a front end on another origin (CORS) in headless Chromium, and the OpenAPI document
# against the API with Schemathesis (owner, member and stranger; CONTRACT_MAX_EXAMPLES,
# CONTRACT_SEED to change the run).
test-demo: venv chromium $(CONSOLE_STAMP)
	$(CARGO) build --locked --quiet -p local-runner --bin tenantry-local
	@port=$$($(PYTHON) -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'); \
	bin="$${CARGO_TARGET_DIR:-target}/debug/tenantry-local"; \
	env -u TENANTRY_ALLOWED_ORIGINS TENANTRY_PORT=$$port $$bin > .demo-stack.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT; \
	for i in $$(seq 1 120); do curl -sf http://127.0.0.1:$$port/health >/dev/null && break; sleep 0.5; done; \
	TENANTRY_URL=http://127.0.0.1:$$port shared/local-runner/demo.sh || { cat .demo-stack.log; exit 1; }; \
	TENANTRY_URL=http://127.0.0.1:$$port shared/local-runner/docs_check.sh || { cat .demo-stack.log; exit 1; }; \
	TENANTRY_URL=http://127.0.0.1:$$port shared/local-runner/cors_check.sh || { cat .demo-stack.log; exit 1; }; \
	TENANTRY_URL=http://127.0.0.1:$$port $(CONSOLE)/run_browser_test.sh || { tail -n 200 .demo-stack.log; exit 1; }; \
	TENANTRY_URL=http://127.0.0.1:$$port $(VENV)/bin/python shared/local-runner/contract_check.py || { tail -n 200 .demo-stack.log; exit 1; }

# Soak (not part of `make test`): the local stack as `make dev` starts it, under a mixed load
# from SOAK_CLIENTS concurrent clients (default 50) for SOAK_MINUTES (default 5), on loopback;
# then the whole table is checked (counters, orphans, owners, storage quota) by a checker whose
# own tests run first. Fails on any 5xx or invariant violation; the stack's output is kept in
# .soak-stack.log.
SOAK_MINUTES ?= 5
SOAK_CLIENTS ?= 50

soak: venv
	$(VENV)/bin/python -B -m unittest shared/local-runner/soak_test.py
	$(CARGO) build --locked --quiet -p local-runner --bin tenantry-local
	shared/local-runner/with_stack.sh "$${CARGO_TARGET_DIR:-target}/debug/tenantry-local" .soak-stack.log \
		$(VENV)/bin/python -B shared/local-runner/soak.py --stack-log .soak-stack.log --minutes $(SOAK_MINUTES) --clients $(SOAK_CLIENTS)

# Cost check (not part of `make test`): the local stack as `make dev` starts it, with its local
# AWS endpoint writing a bill log (.cost-bill.jsonl: every item written and read, every S3
# request and mail); a scripted workload per org (board, mail, files, chat), one org at a
# time; then each org's cost ledger against a bill priced by hand from that log
# (shared/local-runner/cost_bill.py, whose own tests run first), per service, within 10 %.
cost-check: venv
	$(VENV)/bin/python -B -m unittest shared/local-runner/cost_bill_test.py
	$(CARGO) build --locked --quiet -p local-runner --bin tenantry-local
	rm -f .cost-bill.jsonl
	LOCAL_AWS_BILL_LOG=$(abspath .cost-bill.jsonl) shared/local-runner/with_stack.sh "$${CARGO_TARGET_DIR:-target}/debug/tenantry-local" .cost-stack.log \
		$(VENV)/bin/python -B shared/local-runner/cost_check.py --stack-log .cost-stack.log --bill-log $(abspath .cost-bill.jsonl)

# API fuzzing at length (not part of `make test`): the contract check against a fresh local
# stack with FUZZ_API_EXAMPLES examples per operation and caller (default 200, against 20 in
# `make test`), and Schemathesis' stateful phase as the owner and the member: sequences of
# calls along the OpenAPI document's links (create an org, invite, resend or revoke; list the
# members, change a role, remove), FUZZ_API_EXAMPLES of them. FUZZ_API_SEED to replay a run
# (a new seed each run by default). The stack's output is kept in .fuzz-api-stack.log.
FUZZ_API_EXAMPLES ?= 200
FUZZ_API_SEED ?= $(shell date +%s)

fuzz-api: venv
	$(CARGO) build --locked --quiet -p local-runner --bin tenantry-local
	@echo "fuzz-api: seed $(FUZZ_API_SEED) (FUZZ_API_SEED=$(FUZZ_API_SEED) to replay)"
	shared/local-runner/with_stack.sh "$${CARGO_TARGET_DIR:-target}/debug/tenantry-local" .fuzz-api-stack.log \
		$(VENV)/bin/python shared/local-runner/contract_check.py --max-examples $(FUZZ_API_EXAMPLES) \
		--stateful-examples $(FUZZ_API_EXAMPLES) --seed $(FUZZ_API_SEED)

# The typed TypeScript client (shared/client): `make client` writes the API's OpenAPI document
# to shared/client/openapi.json (a Rust test fails when it is stale) and generates
# src/schema.d.ts from it with openapi-typescript; `make test-client` checks that the generated
# types are current, type-checks the client and runs its tests (node --test), then type-checks
# the console and runs its unit tests (its user-pool sign-in, test/cognito.test.mjs).

$(CLIENT_STAMP): $(CLIENT)/package.json $(CLIENT)/package-lock.json
	cd $(CLIENT) && npm ci --no-audit --no-fund
	touch $@

client: $(CLIENT_STAMP)
	$(CARGO) run --locked --quiet -p local-runner --bin tenantry-openapi
	cd $(CLIENT) && npm run --silent generate

test-client: $(CLIENT_STAMP) $(CONSOLE_STAMP)
	cd $(CLIENT) && npm run --silent check && npm test --silent
	cd $(CONSOLE) && npm test --silent

# The web console (shared/console: Vite + React over the typed client). `make console` builds it
# into shared/console/dist (served by `make dev` at /app); `make test-demo` drives it in
# headless Chromium (shared/console/test/console.test.mjs; screenshots in
# shared/console/dist-screenshots/).

$(CONSOLE_STAMP): $(CONSOLE)/package.json $(CONSOLE)/package-lock.json $(CLIENT_STAMP)
	cd $(CONSOLE) && npm ci --no-audit --no-fund
	touch $@

console: $(CONSOLE_STAMP)
	cd $(CONSOLE) && npm run --silent build

# The manifests the infrastructure and this Makefile read, rendered from the function registry
# (shared/registry): infra/functions.json and infra/routes.json. A test fails when they are stale.
manifest:
	$(CARGO) run --locked --quiet -p registry --bin tenantry-manifest

# Formatting (rustfmt.toml) and clippy with the workspace lints, warnings as errors; CI runs it.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Parser fuzzing (fuzz/, cargo-fuzz on nightly): each target for FUZZ_SECONDS (default 60), from
# its corpus in fuzz/corpus/<target>/ plus fuzz/regressions/<target>/ (new inputs go to
# fuzz/artifacts/corpus/, crashes to fuzz/artifacts/<target>/). `make test` needs neither:
# it replays both on stable (shared/fuzzing/tests/corpus.rs). FUZZ_TARGETS to run fewer.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))

fuzz:
	@$(CARGO) +nightly --version >/dev/null 2>&1 || { \
		echo "make fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	@$(CARGO) fuzz --version >/dev/null 2>&1 || { \
		echo "make fuzz needs cargo-fuzz: cargo install cargo-fuzz --locked" >&2; exit 1; }
	@set -e; cd fuzz; for t in $(FUZZ_TARGETS); do \
		echo "== $$t ($(FUZZ_SECONDS) s)"; mkdir -p artifacts/corpus/$$t corpus/$$t regressions/$$t; \
		$(CARGO) +nightly fuzz run $$t artifacts/corpus/$$t corpus/$$t regressions/$$t -- -max_total_time=$(FUZZ_SECONDS); \
	done

clean:
	rm -rf $(VENV) target

# --- infrastructure (infra/: AWS CDK app) -----------------------------------------------
# The Lambda binaries `make build` cross-compiles and `make bench` runs: every function of the
# registry (infra/functions.json), one cargo binary each, named as its crate.
LAMBDA_BINARIES := $(shell $(PYTHON) -c 'import json; print(" ".join(f["name"] for f in json.load(open("infra/functions.json"))["functions"]))')
# dev | prod (infra/README.md); extra context for cdk: CDK_CONTEXT='-c appUrl=... -c mailDomain=...'
STAGE ?= dev
CDK_CONTEXT ?=
INFRA := infra
INFRA_STAMP := $(INFRA)/node_modules/.installed
CFN_LINT_STAMP := $(VENV)/.cfn-lint-installed
# checkov has a virtualenv of its own inside .venv: its pinned dependencies would downgrade the
# local AWS endpoint's (infra/requirements-checkov.txt).
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# cargo-lambda's output: <target dir>/lambda/<binary>/bootstrap.zip (CARGO_TARGET_DIR when set).
LAMBDA_DIR ?= $(abspath $(or $(CARGO_TARGET_DIR),target))/lambda
CDK := cd $(INFRA) && TENANTRY_LAMBDA_DIR=$(LAMBDA_DIR) ./node_modules/.bin/cdk

.PHONY: install-infra test-infra synth build deploy destroy clean-infra

$(INFRA_STAMP): $(INFRA)/package.json $(INFRA)/package-lock.json
	cd $(INFRA) && npm ci --no-audit --no-fund
	touch $@

$(CFN_LINT_STAMP): $(VENV_STAMP) $(INFRA)/requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(INFRA)/requirements.txt
	touch $@

$(CHECKOV_STAMP): $(INFRA)/requirements-checkov.txt | $(VENV_STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(INFRA)/requirements-checkov.txt
	touch $@

install-infra: venv $(INFRA_STAMP) $(CFN_LINT_STAMP) $(CHECKOV_STAMP)

# Type-check, then the node:test suites (template assertions, cdk-nag, checkov, cdk synth + cfn-lint).
test-infra: install-infra
	cd $(INFRA) && CFN_LINT=$(abspath $(VENV))/bin/cfn-lint CHECKOV=$(abspath $(CHECKOV_VENV))/bin/checkov npm test

# Offline synth into infra/cdk.out; functions not built yet get a placeholder (with a warning).
synth: $(INFRA_STAMP)
	$(CDK) synth --quiet -c stage=$(STAGE) -c allowPlaceholderCode=true $(CDK_CONTEXT)

# Cross-compile every Lambda binary for arm64 into $(LAMBDA_DIR)/<binary>/bootstrap.zip.
build: venv
	@test -x $(VENV)/bin/cargo-lambda || \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(INFRA)/requirements-build.txt
	@rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu || \
		rustup target add aarch64-unknown-linux-gnu
	PATH="$(abspath $(VENV))/bin:$$PATH" $(CARGO) lambda build --release --arm64 --output-format zip --locked \
		$(addprefix --bin ,$(LAMBDA_BINARIES))
	@for b in $(LAMBDA_BINARIES); do \
		zip="$(LAMBDA_DIR)/$$b/bootstrap.zip"; \
		test -f "$$zip" || { echo "missing $$zip" >&2; exit 1; }; \
		printf '%-24s %10s bytes  %s\n' "$$b" "$$(stat -c %s "$$zip")" "$$zip"; \
	done

# Deploy to the AWS account of your credentials (cdk bootstrap first, see infra/README.md).
# No placeholder here: a function without build output fails the synth with its name.
# With -c console=true in CDK_CONTEXT the console is built too (the stack deploys shared/console/dist).
deploy: build $(INFRA_STAMP) $(if $(findstring console=true,$(CDK_CONTEXT)),console)
	$(CDK) deploy -c stage=$(STAGE) $(CDK_CONTEXT) \
		--require-approval $(if $(filter prod,$(STAGE)),broadening,never)

destroy: $(INFRA_STAMP)
	$(CDK) destroy -c stage=$(STAGE) -c allowPlaceholderCode=true $(CDK_CONTEXT)

clean-infra:
	rm -rf $(INFRA)/node_modules $(INFRA)/cdk.out
# --- end infrastructure ----------------------------------------------------------------

# --- benchmarks ---
# `make bench`: every function's native release binary under the Lambda Runtime API emulator
# (shared/lambda-emulator) against its own local AWS endpoint with a seeded table; writes
# <target dir>/bench/results.md and results.json. BENCH_ARGS='--iterations 50 --only invites'.
BENCH_TARGET_DIR := $(abspath $(or $(CARGO_TARGET_DIR),target))
BENCH_ARGS ?=

.PHONY: bench

bench: venv
	$(CARGO) build --release --locked $(addprefix -p ,$(LAMBDA_BINARIES))
	$(CARGO) run --locked --quiet -p lambda-emulator --bin tenantry-bench -- \
		--target-dir $(BENCH_TARGET_DIR) --lambda-dir $(LAMBDA_DIR) $(BENCH_ARGS)
	@mkdir -p $(BENCH_TARGET_DIR)/bench
	$(VENV)/bin/python -B shared/testkit/local_aws_bench.py --items 50000 --stream \
		> $(BENCH_TARGET_DIR)/bench/local-aws.json
	@$(PYTHON) -c 'import json,sys; r=json.load(open(sys.argv[1])); print("local endpoint, 3-item transaction (stream on): %.1f ms empty, %.1f ms at %d items, ratio %.2f (< 2)" % (r["empty_ms"], r["seeded_ms"], r["items"], r["ratio"]))' $(BENCH_TARGET_DIR)/bench/local-aws.json
# --- end benchmarks ---
