# tagspark developer targets. Everything runs in ./.venv, made on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint clean

$(BIN)/tagspark: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/tagspark  ## create .venv with tagspark and the test tools

demo: setup  ## run the job on the bundled sample corpus into ./tagspark-demo
	$(BIN)/tagspark demo

test: setup  ## lint, then the whole test suite
	$(BIN)/ruff check tagspark jobs tests scripts
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check tagspark jobs tests scripts
	$(BIN)/ruff format --check tagspark jobs tests scripts

clean:
	rm -rf $(VENV) build dist *.egg-info tagspark-demo spark-warehouse
