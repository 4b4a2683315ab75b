# `make demo` runs the studies and a LeNet-5 training run into build/reports;
# `make reports` rewrites the committed reports/; `make test` runs the tests.
# Each target creates .venv if it is missing and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# the install compiles diffkit/_native.c: a change to it reinstalls
BUILD := pyproject.toml setup.py diffkit/_native.c diffkit/_native_kernels.h diffkit/_native_direct.h

.PHONY: demo reports test oracle bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: $(BUILD) | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

# the tests include the Dask executor's and the graph page's (in the system's Chromium),
# so they install the dist and browser extras too
$(VENV)/.installed-test: $(BUILD) | $(PY)
	$(PY) -m pip install --quiet -e '.[test,dist,browser]'
	touch $@

$(VENV)/.installed-oracle: $(BUILD) | $(PY)
	$(PY) -m pip install --quiet -e '.[test,dist,browser,oracle]'
	touch $@

demo: $(VENV)/.installed-base
	$(PY) -m diffkit demo

# rewrite the committed reports (full mode)
reports: $(VENV)/.installed-base
	$(PY) -m diffkit demo --out reports

test: $(VENV)/.installed-test
	$(PY) -m pytest diffkit tests README.md --doctest-glob=README.md

oracle: $(VENV)/.installed-oracle
	$(PY) -m pytest tests/oracle

bench: $(VENV)/.installed-oracle
	cd benchmarks && ../$(PY) run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
