# Two commands: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Stamps: reinstall only when pyproject.toml changes.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP     := $(VENV)/.installed-dev

.PHONY: run test bench lint fmt clean help

help:
	@echo "make run    set up and start the vault with demo data (SQLite, http://localhost:8000)"
	@echo "            the Blue Badge example service (http://localhost:8001) and the city's"
	@echo "            example services (http://localhost:8002 to 8007), and two local"
	@echo "            witnesses (http://127.0.0.1:8010, 8011) the vault needs to publish;"
	@echo "            other ports: make run PORT=9000 APP_PORT=9001 CITY_PORT=9002 WITNESS_PORT=9010"
	@echo "make test   set up and run the whole test suite"
	@echo "make bench  run the benchmarks and print a table"
	@echo "make lint   ruff + mypy"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(RUNTIME_STAMP)

# PORT=, APP_PORT=, CITY_PORT= and WITNESS_PORT= choose the vault's port, the Blue Badge
# example's, the first of the city's five and the first of the two witnesses' (unset: the
# launcher's defaults, 8000 or VAULT_PORT, 8001, 8002 and 8010).
run: $(RUNTIME_STAMP)
	$(BIN)/python -m clients.examples.demo $(if $(PORT),--port $(PORT)) $(if $(APP_PORT),--app-port $(APP_PORT)) $(if $(CITY_PORT),--city-port $(CITY_PORT)) $(if $(WITNESS_PORT),--witness-port $(WITNESS_PORT))

# Test modules run in parallel, one worker per core (TEST_WORKERS=0 runs them in one
# process); each module stays on one worker, so its fixtures start once.
TEST_WORKERS ?= auto

test: $(DEV_STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy ledger clients vault wallet

fmt: $(DEV_STAMP)
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) vault-data .pytest_cache .mypy_cache .ruff_cache test-artifacts
