# provlog: make demo | make test | make lint
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo

.PHONY: demo test lint bench bench-large bench-catalogue check-python ensure-system clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "provlog needs Python >= 3.11, found " + sys.version.split()[0])'

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[dev]'
	@touch $(STAMP)

$(VENV)/bin/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# the demo needs only the package and Academy; the tests need much more
$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[academy]'
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) examples/demo.py --output-dir prov-runs

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/ruff format --check src tests examples benchmarks
	$(VENV)/bin/mypy

# What the tests need from Debian: redis-server (the Flowcept tests start
# their own on 127.0.0.1), chromium (the report is tested in a real headless
# browser) and graphviz (the lineage picture as SVG).
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium dot:graphviz
ensure-system:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "make test needs:$$missing (sudo apt-get install$$missing)" >&2; exit 1; fi; fi

test: lint ensure-system
	$(VENV)/bin/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) benchmarks/run.py

bench-large: $(STAMP)
	$(PY) benchmarks/bench_large.py

# the catalogue's scale goal at full size: 1,000 runs of 1,000 actions (about 35 min)
bench-catalogue: $(STAMP)
	$(PY) benchmarks/bench_catalogue.py all 1000 1000

clean:
	rm -rf $(VENV) prov-runs build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
