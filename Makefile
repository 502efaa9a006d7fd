# flask-vps: every command a user or CI runs. Each target sets up what it needs.
SHELL := /bin/bash
VENV := .venv
APP_VENV := .venv-app
BIN := $(VENV)/bin
JOBS ?= 3
SCENARIO ?= base
DISTRO ?= debian13
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_FORCE_COLOR := false

.PHONY: help setup venv app-venv docker images apt-cache lint app-test molecule molecule-all test \
	demo demo-deploy demo-rollback demo-destroy demo-cluster demo-cluster-deploy demo-cluster-destroy bench audit clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

venv: ## Create .venv with the pinned control-node packages (no-op when unchanged)
	@scripts/setup-venv.sh $(VENV) requirements-dev.txt

app-venv:
	@scripts/setup-venv.sh $(APP_VENV) app/requirements.txt app/requirements-test.txt

docker: ## Make sure a Docker engine answers (installs and starts docker.io as root on Debian)
	@scripts/ensure-docker.sh

images: docker ## Build the Debian 13 and 12 test images (once per change of their inputs)
	@scripts/build-image.sh debian13 >/dev/null
	@scripts/build-image.sh debian12 >/dev/null

apt-cache: docker ## Start the package cache the test containers share (apt-cacher-ng)
	@scripts/apt-cache.sh >/dev/null

setup: venv docker images apt-cache ## Everything the tests and the sandbox need

lint: venv ## yamllint, ansible-lint (production profile), syntax checks, collections
	$(BIN)/pytest tests/test_lint.py

app-test: app-venv ## The Flask app's own test suite with coverage
	cd app && ../$(APP_VENV)/bin/python -m pytest -q --cov=webapp --cov-report=term-missing --cov-fail-under=90

molecule: setup ## One scenario on one Debian: make molecule SCENARIO=nginx DISTRO=debian12
	FLASK_VPS_DISTROS=$(DISTRO) $(BIN)/pytest tests/test_molecule.py -k "$(SCENARIO)-$(DISTRO)" --durations=0

molecule-all: setup ## Every Molecule scenario on Debian 13 and 12, in parallel
	$(BIN)/pytest -n $(JOBS) --dist load --maxschedchunk 1 tests/test_molecule.py --durations=0

test: ## The whole suite: lint, app tests, every scenario on both Debians
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory app-test
	@$(MAKE) --no-print-directory setup
	$(BIN)/pytest -n $(JOBS) --dist load --maxschedchunk 1 --durations=0 --ignore=tests/test_lint.py

bench: venv docker images ## Figures on a fresh sandbox: provisioning, zero downtime, throughput (bench/results/)
	@scripts/setup-venv.sh .venv-bench bench/requirements.txt
	.venv-bench/bin/python bench/run.py

audit: venv ## Audit the sandbox as an outside reviewer would (table; fails on a missed threshold)
	@scripts/sandbox.sh status >/dev/null || { echo "No sandbox: run make demo first." >&2; exit 1; }
	$(BIN)/python scripts/audit.py --container $${FLASK_VPS_SANDBOX_NAME:-flask-vps-sandbox} \
		--ca .cache/sandbox/ca.crt --ssh-key .cache/sandbox/id_ed25519 --json .cache/sandbox/audit.json

clean: ## Stop the package cache; remove the virtualenvs and caches (images stay; docker rmi them by hand)
	-@[ -f .cache/apt-cacher-ng/apt-cacher-ng.pid ] && kill $$(cat .cache/apt-cacher-ng/apt-cacher-ng.pid) 2>/dev/null; true
	rm -rf $(VENV) $(APP_VENV) .venv-bench .cache

demo: venv docker ## The sandbox: a local container set up like a VPS by site.yml over SSH; prints its URL
	@scripts/sandbox.sh up
	$(BIN)/ansible-playbook -i inventories/sandbox playbooks/site.yml
	@scripts/sandbox.sh info

demo-deploy: venv ## Ship a new release to the sandbox (health-gated, zero downtime)
	@scripts/sandbox.sh status >/dev/null || { echo "No sandbox: run make demo first." >&2; exit 1; }
	$(BIN)/ansible-playbook -i inventories/sandbox playbooks/deploy.yml -e '{"flask_app_force_release": true}'

demo-rollback: venv ## Put the sandbox back on the previous release (or RELEASE=<id>)
	@scripts/sandbox.sh status >/dev/null || { echo "No sandbox: run make demo first." >&2; exit 1; }
	$(BIN)/ansible-playbook -i inventories/sandbox playbooks/rollback.yml $(if $(RELEASE),-e release=$(RELEASE))

demo-destroy: ## Remove the sandbox container (its key stays in .cache/sandbox/)
	@scripts/sandbox.sh down

demo-cluster: setup ## Several hosts: lb1, web1, web2, worker1 and db1 containers converged by site.yml; prints the URL
	@scripts/demo-cluster.sh up

demo-cluster-deploy: venv ## A rolling deploy of a new release to the several-host sandbox
	@scripts/demo-cluster.sh deploy

demo-cluster-destroy: venv ## Remove the several-host sandbox's containers
	@scripts/demo-cluster.sh down
