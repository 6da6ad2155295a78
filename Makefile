# The two commands a new user needs: `make demo` and `make test`. Both set up everything
# on a fresh Debian machine: a virtual environment with the Python packages, and (for the
# tests) the Debian packages of the real peers — SIPp, baresip, espeak-ng.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := sip-tester baresip espeak-ng sox chromium iproute2 nftables linphone-cli nodejs kamailio socat

.PHONY: demo cluster-demo test lint system-packages clean

$(BIN)/.installed: pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ./sdk/python -e '.[test]'
	touch $@

system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: $(BIN)/.installed
	$(BIN)/sautikit demo

# Three nodes, Kamailio, a database of its own on the machine's PostgreSQL and a SeaweedFS
# S3 store on ports 16000-16999; the seed's flows and a conference through Kamailio.
cluster-demo: $(BIN)/.installed system-packages
	$(BIN)/sautikit cluster-demo

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

test: $(BIN)/.installed system-packages lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis .cache
