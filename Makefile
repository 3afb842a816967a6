# Two commands: `make run` (set up + main job) and `make test` (set up + lint + docs + tests).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps re-install only when pyproject.toml changes.
$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench,ray,postgres]'
	touch $@ $(VENV)/.stamp-run

run: $(VENV)/.stamp-run
	$(BIN)/causalcast run $(ARGS)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check src tests benchmarks examples docs

# The documentation site (mkdocs.yml): --strict turns every warning into an error.
docs: $(VENV)/.stamp-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test: lint docs
	$(BIN)/python -m pytest $(ARGS)

bench: $(VENV)/.stamp-dev
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) site build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache
