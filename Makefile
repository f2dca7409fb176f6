# verbex-client developer commands. `make demo` and `make test` do all set-up
# on a fresh machine (Python 3.11+, make; node/npm for the contract tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export SCARF_ANALYTICS := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

NODE_STAMP := node_modules/.installed-stamp
OPTIC := $(CURDIR)/node_modules/.bin/optic
export OPTIC_TELEMETRY_LEVEL := off
export NO_UPDATE_NOTIFIER := 1

.PHONY: install node-tools system-tools generate check-generated update-spec regenerate lint typecheck test pytest bench demo reliability clean

# Targets other than install/test only need *a* venv: they don't reinstall
# when pyproject.toml is newer (tests run them in scratch copies of the repo).
READY := $(BIN)/openapi-python-client

install: $(STAMP)

$(READY):
	$(MAKE) install

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# npm tools pinned by package-lock.json: Optic (update-spec's breaking-change check)
# and Prism (contract tests: mock server and validating proxy).
node-tools: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (Node.js 20+): apt-get install nodejs npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

generate: | $(READY)
	$(BIN)/python scripts/generate.py generate

check-generated: | $(READY)
	$(BIN)/python scripts/generate.py check

# One transaction: validate, diff, generate and type-check in a staging folder, then swap in
# openapi.json + generated/, bump the version and write CHANGELOG.md. SPEC: a path or a URL.
update-spec: | $(READY) $(NODE_STAMP)
	@test -n "$(SPEC)" || { echo "usage: make update-spec SPEC=path/to/openapi.json|URL" >&2; exit 2; }
	VERBEX_OPTIC="$${VERBEX_OPTIC:-$(OPTIC)}" $(BIN)/python scripts/update_spec.py "$(SPEC)"

# CI's regeneration job: fetch SPEC_URL, update-spec, and on change commit on a new branch
# and push it to REMOTE for review.
SPEC_URL ?= https://docs.verbex.ai/api-reference/openapi.json
REMOTE ?= origin
regenerate: | $(READY) $(NODE_STAMP)
	VERBEX_OPTIC="$${VERBEX_OPTIC:-$(OPTIC)}" $(BIN)/python scripts/regenerate.py --spec-url "$(SPEC_URL)" --remote "$(REMOTE)"

lint: | $(READY)
	$(BIN)/ruff check wrapper tests scripts benchmarks
	$(BIN)/ruff format --check wrapper tests scripts benchmarks

typecheck: | $(READY)
	$(BIN)/mypy

pytest: | $(READY)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# nginx (Debian's nginx-light) serves the benchmarks, and their smoke run inside `make test`.
# Its package starts a server on port 80: stopped again, ours run on 127.0.0.1 ports of their own.
system-tools:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { echo "nginx is required: apt-get install nginx-light (as root)" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null && \
	  { service nginx stop >/dev/null 2>&1 || true; }; }

test: install node-tools system-tools lint typecheck check-generated
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/python scripts/demo.py

reliability: install
	$(BIN)/python tests/reliability.py

bench: install system-tools
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/archive.py

clean:
	rm -rf $(VENV) node_modules build dist .build .mypy_cache .ruff_cache .pytest_cache .hypothesis .schemathesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
