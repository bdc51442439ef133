# Two entry points for a fresh machine (see README.md):
#   make demo   install everything (virtualenv, Kafka jars) and run the live demo
#   make test   install everything and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test unit lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)
	$(BIN)/cxstream broker fetch

demo: install
	$(BIN)/cxstream demo

test: install
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) .cxstream
