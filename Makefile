# The two commands a new user needs: `make demo` and `make test`. Both set up everything
# on a fresh Debian machine: a virtual environment with the Python packages, and (for the
# tests) the Debian packages of the real peers — SIPp, baresip, espeak-ng.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := sip-tester baresip espeak-ng sox chromium iproute2 nftables linphone-cli nodejs kamailio socat
# Build tools of `make sipp-tls` (Debian's SIPp 3.6.1 has no TLS).
DEBIAN_PACKAGES += cmake g++ libssl-dev libncurses-dev pkg-config
SIPP_TLS_VERSION := v3.7.7
SIPP_TLS := .cache/sipp-tls/sipp

.PHONY: demo test lint system-packages clean sipp-tls

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
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

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

test: $(BIN)/.installed system-packages lint
	$(BIN)/pytest

# SIPp with OpenSSL, for the SIP-over-TLS tests (`sipp -t l1`; tests/sipp.py finds it here).
sipp-tls: $(SIPP_TLS)
$(SIPP_TLS):
	rm -rf .cache/sipp-src && mkdir -p .cache/sipp-tls
	git clone --quiet --depth 1 --branch $(SIPP_TLS_VERSION) --recurse-submodules \
		https://github.com/SIPp/sipp.git .cache/sipp-src
	cmake -S .cache/sipp-src -B .cache/sipp-src/build -DCMAKE_BUILD_TYPE=Release \
		-DUSE_SSL=1 -DUSE_PCAP=0 -DUSE_SCTP=0 -DUSE_GSL=0 >/dev/null
	$(MAKE) -C .cache/sipp-src/build sipp >/dev/null
	cp .cache/sipp-src/build/sipp $@

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis .cache
