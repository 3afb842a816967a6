# Two commands: `make run` (set up + main job) and `make test` (set up + lint + docs + tests).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test lint docs bench clean web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps re-install only when pyproject.toml changes.
$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench,ray,yahoo,postgres,web-test]'
	$(BIN)/pip install --quiet --no-deps 'optionlab==1.9.1'  # see the bench extra
	touch $@ $(VENV)/.stamp-run

run: $(VENV)/.stamp-run
	$(BIN)/causalcast run $(ARGS)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check src tests benchmarks examples docs

# The documentation site (mkdocs.yml): --strict turns every warning into an error.
docs: $(VENV)/.stamp-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The dashboard's front-end: npm packages (package-lock.json) and web/src copied into the
# package's static folder. The result is committed, so installing causalcast needs no node;
# this refreshes it whenever the lock file, the build script or a source changes.
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null)
web/node_modules/.built: web/package-lock.json web/build.mjs $(WEB_SOURCES)
	@if command -v npm >/dev/null; then \
		cd web && npm ci --silent --ignore-scripts --no-audit --no-fund && node build.mjs && touch node_modules/.built; \
	else echo "npm not found: using the committed dashboard assets"; fi

web: web/node_modules/.built

test: lint docs web
	$(BIN)/python -m pytest $(ARGS)

bench: $(VENV)/.stamp-dev
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) site build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache
