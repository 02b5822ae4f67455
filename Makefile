# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean venv notebooks docs docs-serve

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "leadscore needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/leadscore demo --out demo

# Two workers (CI's two cores), a test file per worker at a time: its fixtures built once.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Re-execute the notebooks in place (their figures and tables are committed).
notebooks: $(STAMP)
	$(BIN)/python notebooks/run.py

# The documentation site (MkDocs, Material theme) into site/; the references are generated.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve -a 127.0.0.1:8000

bench: $(STAMP)
	$(BIN)/python -m benchmarks.simulate
	$(BIN)/python -m benchmarks.features
	$(BIN)/python -m benchmarks.train
	$(BIN)/python -m benchmarks.serving

clean:
	rm -rf $(VENV) demo mlflow.db mlflow.db.lock mlruns .pytest_cache site
