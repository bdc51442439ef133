# Two entry points for a fresh machine (see README.md):
#   make demo   install everything (virtualenv, Kafka jars) and run the live demo
#   make test   install everything and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test unit lint clean promtool amtool chromium bench-peer

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,model]'
	touch $(STAMP)

install: $(STAMP)
	$(BIN)/cxstream broker fetch

demo: install
	$(BIN)/cxstream demo

test: install promtool amtool chromium lint
	$(BIN)/pytest

# style, the layers and cycles (import-linter, contracts in pyproject.toml) and types
# (the package, the benches and the test kit)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy cxstream bench testkit

# Debian packages the tests need, installed as the prometheus package is (root only):
# $(call debian,<command>,<package>,<what is skipped without it>)
define debian
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(2) >/dev/null) \
	    || echo "could not install $(2): $(3) will be skipped"; \
	  else echo "$(1) not found and cannot be installed here: $(3) will be skipped"; fi; }
endef

# promtool checks the Prometheus files in deploy/ (Debian's prometheus package ships it)
promtool:
	$(call debian,promtool,prometheus,its test)

# amtool checks deploy/alertmanager (Debian's prometheus-alertmanager package ships it)
amtool:
	$(call debian,amtool,prometheus-alertmanager,its test)

# the console's browser test drives Debian's chromium through Playwright
chromium:
	$(call debian,chromium,chromium,the browser test)

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# the quix-streams peer of bench/throughput.py, in a virtualenv of its own: its pins and
# cxstream's cannot share one (bench/peer/requirements.txt)
PEER_VENV := .venv-peer
$(PEER_VENV)/.installed: bench/peer/requirements.txt
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install --quiet -r bench/peer/requirements.txt
	touch $@

bench-peer: $(PEER_VENV)/.installed

clean:
	rm -rf $(VENV) $(PEER_VENV) .cxstream
