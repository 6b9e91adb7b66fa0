# tagspark developer targets. Everything runs in ./.venv, made on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint dist clean

$(BIN)/tagspark: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/tagspark  ## create .venv with tagspark and the test tools

demo: setup  ## run the job on the bundled sample corpus into ./tagspark-demo
	$(BIN)/tagspark demo

test: setup  ## lint, then the whole test suite
	$(BIN)/ruff check tagspark jobs tests scripts bench conftest.py
	$(BIN)/pytest

# What spark-submit needs: dist/tagspark.zip (--py-files, our pure-Python code) and
# dist/env.tar.gz (--archives ...#environment, a relocatable venv with numpy, scipy, pyarrow
# and pandas for
# executors or drivers that lack them; pyspark itself comes from the cluster's Spark).
dist: setup
	rm -rf dist build/env
	$(BIN)/python scripts/build_zip.py dist/tagspark.zip
	$(PYTHON) -m venv build/env
	build/env/bin/pip install --quiet "numpy>=1.24" "scipy>=1.10" "pyarrow>=18" "pandas>=2.2,<3"
	$(BIN)/venv-pack --quiet -p build/env -o dist/env.tar.gz

lint: setup
	$(BIN)/ruff check tagspark jobs tests scripts bench conftest.py
	$(BIN)/ruff format --check tagspark jobs tests scripts bench conftest.py

clean:
	rm -rf $(VENV) build dist *.egg-info tagspark-demo spark-warehouse
