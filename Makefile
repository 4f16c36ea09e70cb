# Skillepunkt: `make run` starts the firmware on the simulated board, `make test` runs
# the whole suite. Both set up what is missing first (Debian packages, .venv), and skip
# what is already there.

# The venv is made on the interpreter the image ships, Debian's python3 (linked statically
# and built with PGO/LTO: 10-15 % faster than a shared-library build such as pyenv's, which
# the SIP call-rate benchmark notices); any other python3 where there is none.
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ./var
# Debian packages the firmware and its tests need (peers, browser, tools).
APT_PACKAGES := chromium chromium-driver sip-tester kamailio baresip linphone-cli \
  libspandsp2 libspeexdsp1 espeak-ng sox rtpengine-daemon
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test deps apt venv lint bench clean

run: deps
	$(BIN)/skillepunkt run --board sim --data $(DATA) $(RUN_ARGS)

test: deps
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest selected no tests" >&2; exit 1; fi; exit $$rc

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

deps: apt venv

# a venv made on another interpreter (an older checkout's default) is made again
venv:
	@want=$$(readlink -f "$$(command -v $(PYTHON))"); \
	have=$$(sed -n 's/^executable = //p' $(VENV)/pyvenv.cfg 2>/dev/null); \
	if [ -n "$$have" ] && [ "$$(readlink -f "$$have")" != "$$want" ]; then \
	  echo "$(VENV) was made on $$have: making it again on $$want"; rm -rf $(VENV); \
	fi
	@$(MAKE) --no-print-directory $(VENV)/.installed

apt:
	@missing=""; for p in $(APT_PACKAGES) $$($(PYTHON) -c 'import ensurepip' 2>/dev/null || echo python3-venv); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q -o DPkg::Lock::Timeout=600 $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

bench: deps
	@ls bench/*.py >/dev/null 2>&1 && for b in bench/*.py; do $(BIN)/python $$b || exit 1; done || echo "no benchmarks yet"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
