# The two commands a new user types: `make up` (run the stack) and `make test` (run the tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK := $(BIN)/stack
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: help venv install up down status render validate backup restore deploy doctor test test-deps querycheck-deps collector lint typecheck lint-imports bench clean

help:
	@echo "make up        create the virtualenv, install, and bring the stack up"
	@echo "make up RUNTIME=process   the same without Docker: local processes of what this machine has"
	@echo "make test      install what the tests need (Debian packages included) and run them all"
	@echo "make down | status | render | validate | lint | typecheck | lint-imports | bench"
	@echo "make collector build the stack's otelcol-contrib from Go modules (scripts/collector/manifest.yaml)"
	@echo "make backup   back up the running stack into backups/ (ARGS='--keep 7' etc.)"
	@echo "make restore FILE=backups/....tar.zst   restore an archive (verified first; asks before replacing)"
	@echo "make deploy HOST=user@server   bring the stack up on a server's Docker engine over SSH"
	@echo "make doctor    security and health findings (HOST=user@server for a remote stack)"

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# RUNTIME=process: no Docker needed; what this machine has starts, the rest is skipped with a line each.
up: install
	@$(STACK) up $(if $(filter process,$(RUNTIME)),--runtime process --skip-missing) $(ARGS)

down: install
	$(STACK) down $(ARGS)

status: install
	$(STACK) status $(ARGS)

render: install
	$(STACK) render $(ARGS)

validate: install
	$(STACK) validate $(ARGS)

backup: install
	$(STACK) backup $(ARGS)

restore: install
	@if [ -z "$(FILE)" ]; then echo "usage: make restore FILE=backups/<archive>.tar.zst [ARGS='--only grafana --yes']" >&2; exit 2; fi
	$(STACK) restore "$(FILE)" $(ARGS)

# HOST=user@server, ssh://user@server:2222 or a docker context name; preflight runs first.
deploy: install
	@if [ -z "$(HOST)" ]; then echo "usage: make deploy HOST=user@server [ARGS='--force']" >&2; exit 2; fi
	$(STACK) deploy --host "$(HOST)" $(ARGS)

doctor: install
	$(STACK) doctor $(if $(HOST),--host "$(HOST)") $(ARGS)

# Debian's packages give the real promtool, amtool, prometheus and alertmanager the tests run,
# caddy (the TLS proxy's config is run for real), OpenSSH (the deploy tunnel runs against a real sshd),
# and the Docker engine the docker-marked tests start on a private socket (tests/support/engine.py), with
# busybox-static for the shell and wget of the images they build (tests/support/images.py), and Debian's
# python3.11 that runs the Grafana, Loki and Tempo stand-ins inside their images (tests/support/standins/).
TEST_PACKAGES := prometheus prometheus-alertmanager caddy openssh-client openssh-server docker.io iptables busybox-static python3.11
test-deps:
	@if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null \
	    || ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null \
	    || ! command -v caddy >/dev/null || ! command -v ssh >/dev/null || ! test -x /usr/sbin/sshd \
	    || ! command -v dockerd >/dev/null || ! test -x /bin/busybox || ! test -x /usr/bin/python3.11; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  echo "Installing Debian packages: $(TEST_PACKAGES)"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES) >/dev/null; \
	fi

# The stack's own otelcol-contrib, built by the OpenTelemetry Collector Builder from Go modules into
# ~/.cache/stack/otelcol-<hash of the manifest>/ (nothing happens when that build is there already).
# It needs Go >= 1.26 (what the 0.160 modules declare; Debian's golang-go is older).
collector: install
	@command -v go >/dev/null || test -x /usr/local/go/bin/go \
	  || { echo "make collector needs Go (>= 1.26) on PATH or in /usr/local/go" >&2; exit 2; }
	$(BIN)/python scripts/collector/build.py

# Grafana's LogQL and TraceQL grammars (npm), which the tests parse every shipped log and trace query
# with (tests/support/querycheck.py); reinstalled only when the lock file changes. Debian's nodejs/npm when
# this machine has no Node.js.
QUERYCHECK := scripts/querycheck
QUERYCHECK_STAMP := $(QUERYCHECK)/node_modules/.package-lock.json
$(QUERYCHECK_STAMP): $(QUERYCHECK)/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; \
	fi
	npm ci --prefix $(QUERYCHECK) --no-audit --no-fund --loglevel=error
	@touch $(QUERYCHECK_STAMP)

querycheck-deps: $(QUERYCHECK_STAMP)

# The checks first (seconds), then the suite: ruff, mypy and the import layers are part of `make test`.
test: install test-deps collector querycheck-deps lint typecheck lint-imports
	$(BIN)/pytest $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy on stack/ (settings in pyproject.toml [tool.mypy]).
typecheck: install
	$(BIN)/mypy

# The layers of the package, top to bottom (pyproject.toml [tool.importlinter]).
lint-imports: install
	$(BIN)/lint-imports

bench: install test-deps collector
	$(BIN)/python scripts/bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
