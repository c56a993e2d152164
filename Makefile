# Build, test and demo targets for the nomadops.nomad collection. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The interpreter the development virtual environment is made from (ansible-core 2.19 needs 3.11+).
PYTHON ?= python3.11
# Every environment installs the exact versions of its lock file (locks/, `make lock` writes them), so a clone
# tests the same packages every day. LATEST=1 (`make test-latest`) uses the unlocked requirements instead, in
# build/latest/venv, to see on purpose what newer releases would change.
LATEST ?= 0
DEV_LOCK := locks/dev-py3.11.txt
ifeq ($(LATEST),1)
VENV := build/latest/venv
VENV_SOURCE := requirements-dev.txt
PIP_INSTALL := -r requirements-dev.txt
else
VENV := .venv
VENV_SOURCE := $(DEV_LOCK)
PIP_INSTALL := --require-hashes --no-deps -r $(DEV_LOCK)
endif
BIN := $(CURDIR)/$(VENV)/bin
VENV_STAMP := $(VENV)/.requirements-installed

# ansible-test only runs inside a physical .../ansible_collections/<namespace>/<name> directory.
COLLECTIONS_ROOT := $(CURDIR)/build/collections
COLLECTION_COPY := $(COLLECTIONS_ROOT)/ansible_collections/nomadops/nomad
DIST_DIR := $(CURDIR)/build/dist

# Python version ansible-test runs sanity and unit tests with.
TEST_PYTHON ?= 3.11
# Further Pythons the plugins are compiled and imported with (3.8 is the oldest module target of
# ansible-core 2.19; 3.12/3.13 are controller versions). Interpreters are looked up in pyenv, then PATH.
TARGET_PYTHONS ?= 3.8 3.12 3.13
PYENV_ROOT ?= $(HOME)/.pyenv
PYENV_BINS := $(foreach version,$(TARGET_PYTHONS),$(firstword $(wildcard $(PYENV_ROOT)/versions/$(version).*/bin)))
# pytest-xdist workers for the integration suite ("0" runs it in one process). Each test module keeps
# its own emulator, so whole modules go to one worker (--dist loadfile). Measured on 2 cores:
# about 6 min with 2 workers against 7.5 min in one process.
INTEGRATION_WORKERS ?= 2
# Emulator scenario and playbook used by `make demo`.
DEMO_SCENARIO ?= tests/emulator/scenarios/demo.yml
DEMO_PLAYBOOK ?= playbooks/demo.yml
MOLECULE_SCENARIO ?= alloc_rolling_restart
# `make bench`: full (every section at full size, writes BENCHMARKS.md and docs/benchmarks/) or quick (small
# sizes, one repetition, report on stdout and charts in build/bench-charts). Neither is part of `make test`.
BENCH_MODE ?= full

# Every ansible-core release meta/runtime.yml admits (requires_ansible >=2.19) is tested: 2.19 in .venv by
# every gate, the others by scripts/test_matrix.py in build/venv-<release> (2.20: sanity + units on Python
# 3.12; 2.21, the newest: sanity, units, integration and the demo on Python 3.13).
MATRIX_RELEASES := 2.20 2.21

# Gates run by `make test`, in this order (scripts/run_gates.py stops at the first failure).
TEST_GATES := venv system-packages ruff changelog-lint sanity sanity-targets units emulator-test integration demo lint docs-lint molecule \
	build importer ee $(addprefix core-,$(MATRIX_RELEASES))

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS_ROOT)
export PATH := $(BIN):$(PATH)
export PYTHONDONTWRITEBYTECODE := 1
ifeq ($(CI),true)
# Plain logs in CI (ansible, ansible-lint, molecule and pytest honour NO_COLOR).
export NO_COLOR := 1
endif

PYTEST_OPTIONS := -p no:cacheprovider -ra

.PHONY: help venv lock test-latest system-packages collection get-pip sanity sanity-targets units emulator-test integration lint docs-lint changelog-lint \
	changelog-release ruff molecule build importer ee test test-matrix $(addprefix core-,$(MATRIX_RELEASES)) demo docs \
	bench clean distclean

help: ## List the targets
	@grep -E '^[a-z0-9.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

venv: $(VENV_STAMP) ## Create .venv (Python 3.11) with the exact versions of locks/dev-py3.11.txt; reused while up to date

$(VENV_STAMP): $(VENV_SOURCE)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -c 'import sys; assert sys.version_info[:2] >= (3, 11), "$(VENV) must use Python 3.11+"'
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet $(PIP_INSTALL)
	touch $@

lock: venv ## Resolve locks/*.txt and tests/unit/constraints.txt anew from the requirement ranges (uv pip compile)
	$(BIN)/python scripts/lock_requirements.py

test-latest: ## Fast gates in build/latest/ environments from the unlocked requirements, then what differs from the lock
	$(MAKE) --no-print-directory LATEST=1 venv ruff units emulator-test lint
	$(PYTHON) scripts/test_matrix.py --latest 2.21 units
	$(PYTHON) scripts/lock_requirements.py --compare build/latest/venv
	$(PYTHON) scripts/lock_requirements.py --compare build/latest/venv-2.21 --release 2.21

system-packages: ## Debian packages the gates need: shellcheck (ansible-test skips its sanity test silently without it)
	@if command -v shellcheck >/dev/null; then \
		echo "system-packages: shellcheck $$(shellcheck --version | sed -n 's/^version: //p') is installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null && \
		echo "system-packages: installed shellcheck $$(shellcheck --version | sed -n 's/^version: //p')"; \
	else \
		echo "system-packages: shellcheck is missing: install it (Debian/Ubuntu: sudo apt-get install shellcheck)" >&2; \
		exit 1; \
	fi

collection: ## Mirror the tree into build/collections/ansible_collections/nomadops/nomad (in place)
	$(PYTHON) scripts/sync_collection_copy.py

get-pip: venv ## Install the offline get-pip stand-in ansible-test bootstraps its environments with
	$(BIN)/python scripts/install_get_pip_standin.py $(TEST_PYTHON)

sanity: venv collection get-pip ## ansible-test sanity (no ignore files) in the collection copy
	cd $(COLLECTION_COPY) && $(BIN)/ansible-test sanity --venv --python $(TEST_PYTHON)

sanity-targets: venv collection get-pip ## ansible-test sanity compile + import on TARGET_PYTHONS (3.8 3.12 3.13)
	$(BIN)/python scripts/install_get_pip_standin.py $(TARGET_PYTHONS)
	cd $(COLLECTION_COPY) && for version in $(TARGET_PYTHONS); do \
		PATH="$(BIN):$(subst $(eval) ,:,$(PYENV_BINS)):$$PATH" \
			$(BIN)/ansible-test sanity --venv --python $$version --test compile --test import || exit 1; \
	done

units: venv collection get-pip ## ansible-test units on tests/unit (fails when no test ran)
	rm -rf $(COLLECTION_COPY)/tests/output/junit
	$(if $(filter 1,$(LATEST)),rm -f $(COLLECTION_COPY)/tests/unit/constraints.txt)
	cd $(COLLECTION_COPY) && $(BIN)/ansible-test units --venv --python $(TEST_PYTHON)
	$(BIN)/python scripts/check_junit_counts.py units $(COLLECTION_COPY)/tests/output/junit

emulator-test: venv ## The Nomad API emulator's own test suite
	$(BIN)/python -m pytest $(PYTEST_OPTIONS) tests/emulator/tests

integration: venv collection ## Real ansible runs against the emulator (pytest tests/integration)
	NOMADOPS_COLLECTIONS_PATH=$(COLLECTIONS_ROOT) $(BIN)/python -m pytest $(PYTEST_OPTIONS) $(if $(filter-out 0,$(INTEGRATION_WORKERS)),-n $(INTEGRATION_WORKERS) --dist loadfile) tests/integration

ruff: venv ## ruff check (ruff.toml: pyflakes, pyupgrade, pycodestyle at 160 columns); RUFF_FIX=1 applies safe fixes
	$(BIN)/ruff check $(if $(filter-out 0,$(RUFF_FIX)),--fix) $(or $(RUFF_PATHS),.)

lint: venv ## ansible-lint, production profile (.ansible-lint), exactly as a bare `ansible-lint` in a clone
	@# No ANSIBLE_COLLECTIONS_PATH: ansible-lint must find the checkout by itself (it installs it into
	@# .ansible/collections). A HOME of its own keeps a copy in ~/.ansible/collections (someone's molecule
	@# prerun) out of the way.
	mkdir -p build/lint-home
	env -u ANSIBLE_COLLECTIONS_PATH HOME=$(CURDIR)/build/lint-home $(BIN)/ansible-lint

docs-lint: venv collection ## antsibull-docs lint-collection-docs --plugin-docs in the collection copy; no requirement twice
	cd $(COLLECTION_COPY) && $(BIN)/antsibull-docs lint-collection-docs --plugin-docs .
	$(BIN)/python scripts/check_doc_requirements.py

changelog-lint: venv collection ## antsibull-changelog lint, no Ansible markup in fragments, a dry release
	$(BIN)/antsibull-changelog lint
	$(BIN)/python scripts/check_changelog_fragments.py --release $(COLLECTION_COPY)

changelog-release: venv collection ## antsibull-changelog release of galaxy.yml's version (docs/releasing.md)
	@# release runs ansible-doc (found on PATH, which starts with .venv/bin) on the collection copy.
	$(BIN)/antsibull-changelog release --version "$$($(BIN)/python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')"

molecule: venv collection ## molecule test of extensions/molecule/alloc_rolling_restart (MOLECULE_SCENARIO)
	test -d extensions/molecule/$(MOLECULE_SCENARIO) || { echo "molecule: no scenario extensions/molecule/$(MOLECULE_SCENARIO)" >&2; exit 1; }
	cd $(COLLECTION_COPY) && $(BIN)/molecule test -s $(MOLECULE_SCENARIO)

build: venv ## ansible-galaxy collection build into build/dist, checking no test artefact is packed and a release tag at HEAD equals the version
	rm -rf $(DIST_DIR)
	$(BIN)/ansible-galaxy collection build --output-path $(DIST_DIR) .
	$(BIN)/python scripts/check_collection_artifact.py $(DIST_DIR)/nomadops-nomad-*.tar.gz
	$(BIN)/python scripts/check_release_tag.py

importer: build ## galaxy-importer (as Galaxy imports) on the built artifact, offline; any WARNING fails
	$(BIN)/python scripts/run_galaxy_importer.py $(DIST_DIR)/nomadops-nomad-*.tar.gz

ee: venv ## ansible-builder create with extensions/ee (no container engine needed), checking its dependencies
	rm -rf build/ee
	$(BIN)/ansible-builder create --file extensions/ee/execution-environment.yml --context build/ee
	grep -qx 'requests>=2.25' build/ee/_build/requirements.txt
	grep -qx 'websocket-client>=1.2' build/ee/_build/requirements.txt
	grep -q 'name: nomadops.nomad' build/ee/_build/requirements.yml
	@echo "ee: build context in build/ee accepted by ansible-builder"

test: ## Every gate, in order, stopping at the first failure (KEEP_GOING=1 runs them all)
	$(PYTHON) scripts/run_gates.py $(if $(KEEP_GOING),--keep-going) $(TEST_GATES)

test-matrix: ## Only the other ansible-core releases: every core-<release> gate below
	INTEGRATION_WORKERS=$(INTEGRATION_WORKERS) $(PYTHON) scripts/test_matrix.py --all

core-2.20: ## sanity + units with ansible-core 2.20 (Python 3.12) in build/venv-2.20
	INTEGRATION_WORKERS=$(INTEGRATION_WORKERS) $(PYTHON) scripts/test_matrix.py 2.20

core-2.21: ## sanity, units, integration, demo with ansible-core 2.21 (Python 3.13) in build/venv-2.21
	INTEGRATION_WORKERS=$(INTEGRATION_WORKERS) $(PYTHON) scripts/test_matrix.py 2.21

demo: venv collection ## Start the emulator with the demo scenario and run playbooks/demo.yml against it
	$(BIN)/python scripts/run_demo.py --scenario $(DEMO_SCENARIO) --playbook $(DEMO_PLAYBOOK)

docs: venv collection ## Render the collection docs to docs/build/html (offline)
	./docs/build.sh

bench: venv collection ## Run the benchmarks: BENCHMARKS.md + docs/benchmarks (~20 min); BENCH_MODE=quick: ~3 min smoke run
	test -f benchmarks/run.py || { echo "bench: benchmarks/run.py does not exist" >&2; exit 1; }
	case "$(BENCH_MODE)" in full|quick) ;; *) echo "bench: BENCH_MODE must be full or quick (got '$(BENCH_MODE)')" >&2; exit 1;; esac
	$(BIN)/python benchmarks/run.py $(if $(filter quick,$(BENCH_MODE)),--quick)

clean: ## Remove build output, test output and caches (keeps .venv)
	rm -rf build tests/output .pytest_cache .hypothesis docs/build docs/rst docs/temp-rst .ansible collections \
		changelogs/.plugin-cache.yaml
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV) .venv-*

# `make demo-cluster`: README.md's setup. The port the demo cluster listens on (README.md's examples use 4646).
DEMO_PORT ?= 4646
.PHONY: demo-cluster

demo-cluster: venv collection ## Start the demo cluster on 127.0.0.1:4646 (DEMO_PORT) until Ctrl-C; prints the exports that make README.md's examples run in another shell
	$(BIN)/python scripts/run_demo.py --serve --port $(DEMO_PORT) --scenario $(DEMO_SCENARIO)
