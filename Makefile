# The README's two commands are `make demo` and `make test`; both install what is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= data
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: install serve demo test lint bench clean help

help:
	@echo "make demo   - install, start a testbed, run the digits-evasion example, stop"
	@echo "make test   - install, run the whole test suite"
	@echo "make serve  - serve the testbed at http://127.0.0.1:$(PORT) with data in $(DATA_DIR)/"
	@echo "make lint   - ruff"
	@echo "make bench  - run the benchmarks in benchmarks/"

install: $(STAMP)

# torch is pinned in pyproject's [ml] extra to the CPU build (a bare "torch" pulls CUDA).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[ml,dev,v0]"
	@# MLflow's migrated empty database, copied into each new data dir (src/dioptra/mlflow_db.py)
	-$(BIN)/python -m dioptra.mlflow_db
	@touch $(STAMP)

serve: install
	$(BIN)/dioptra server --data-dir $(DATA_DIR) --port $(PORT)

demo: install
	$(BIN)/python examples/demo.py --data-dir $(DATA_DIR) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests task-plugins examples benchmarks

bench: install
	$(BIN)/python benchmarks/api_throughput.py
	$(BIN)/python benchmarks/job_overhead.py
	$(BIN)/python benchmarks/attack_speed.py
	$(BIN)/python benchmarks/server_start.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
