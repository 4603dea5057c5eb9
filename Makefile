# stemforge: `make run` starts the service on the embedded defaults, `make test` runs every test.
# Both install what they need on a fresh machine (a venv in .venv, npm packages in node_modules).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
SERVE_CONFIG ?= configs/serve.cpu.yaml
PYTEST_ARGS ?=

export OMP_WAIT_POLICY ?= PASSIVE
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: install run test lint bench clean

install: $(VENV)/.installed $(if $(wildcard package-lock.json),node_modules/.installed)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/serve run $(SERVE_CONFIG)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check deployments tests bench
	$(BIN)/ruff format --check deployments tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
