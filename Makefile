# `make demo` runs the studies and a LeNet-5 training run into build/reports;
# `make reports` rewrites the committed reports/; `make test` runs the tests; `make docs`
# builds the documentation site into build/docs.
# Each target creates .venv if it is missing and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# the install compiles diffkit/_native.c: a change to it reinstalls
BUILD := pyproject.toml setup.py diffkit/_native.c diffkit/_native_kernels.h diffkit/_native_direct.h

.PHONY: demo reports test lint oracle bench docs screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: $(BUILD) | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

# the tests include the Dask executor's, the graph page's (in the system's Chromium) and
# the tutorials' (in a Jupyter kernel) and revolve's against checkpoint_schedules, so they
# install those extras too
TEST_EXTRAS := test,dist,browser,docs,dev,schedules
$(VENV)/.installed-test: $(BUILD) | $(PY)
	$(PY) -m pip install --quiet -e '.[$(TEST_EXTRAS)]'
	touch $@

$(VENV)/.installed-oracle: $(BUILD) | $(PY)
	$(PY) -m pip install --quiet -e '.[$(TEST_EXTRAS),oracle]'
	touch $@

$(VENV)/.installed-docs: $(BUILD) | $(PY)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

demo: $(VENV)/.installed-base
	$(PY) -m diffkit demo

# rewrite the committed reports (full mode)
reports: $(VENV)/.installed-base
	$(PY) -m diffkit demo --out reports

# with coverage: the table at the end lists, per module, the lines no test reaches
test: $(VENV)/.installed-test
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered \
		diffkit tests README.md --doctest-glob=README.md

# ruff (lint and format) on everything, mypy on the public API (pyproject's [tool.mypy])
lint: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

oracle: $(VENV)/.installed-oracle
	$(PY) -m pytest tests/oracle

# the documentation site: every code cell executed, warnings (broken references
# included) are errors
docs: $(VENV)/.installed-docs
	$(PY) -m sphinx -b html -E -W --keep-going -q docs build/docs
	@echo "open build/docs/index.html"

# the docs' pictures of the graph page, as the browser test sees it (needs Chromium)
screenshots: $(VENV)/.installed-test
	mkdir -p docs/_static/graph-page
	DIFFKIT_SCREENSHOTS=docs/_static/graph-page DIFFKIT_REQUIRE_BROWSER=1 \
		$(PY) -m pytest -p no:cacheprovider tests/test_graph_page.py -k "steps_through and not generated"

bench: $(VENV)/.installed-oracle
	cd benchmarks && ../$(PY) run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
