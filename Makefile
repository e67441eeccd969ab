# Every target creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean chromium

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "posledger needs Python 3.11 or newer: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)

# The domain and write path are compiled (setup.py): a changed source is built again, so
# that the tests run what users run. (Until then, posledger runs that module's source.)
SOURCES := $(shell find src -name '*.py' -not -path '*/migrations/*')

$(STAMP): pyproject.toml setup.py $(SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,report,service,ib,nats,binance]'
	@touch $@

demo: $(STAMP)
	$(BIN)/posledger demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench setup.py
	$(BIN)/ruff format --check src tests bench setup.py
	$(BIN)/mypy

# Everything compiled (what users run), two tests at a time (most of a test's time is
# spent waiting for a database or a child process), then alone the tests that restart a
# shared server; then the domain's tests once more as pure Python (what runs where
# nothing could be compiled).
test: lint chromium
	POSLEDGER_EXPECT_COMPILED=1 $(BIN)/pytest -n 2 -m "not exclusive"
	POSLEDGER_EXPECT_COMPILED=1 $(BIN)/pytest -m exclusive
	POSLEDGER_PURE=1 $(BIN)/pytest -q tests/unit tests/test_compiled.py

# The HTML report's test opens the page in the system's headless Chromium (Debian's
# package, driven by Playwright from PyPI; never a browser Playwright downloads itself).
# Installed when missing, where apt-get can; otherwise that test is skipped (or fails
# under CI=true).
chromium:
	@command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || \
	  { echo "installing chromium for the report test"; \
	    { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } \
	    || echo "could not install chromium: the report's browser test will be skipped"; }

bench: $(STAMP)
	$(BIN)/python bench/bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis posledger-demo.db* build
	find src -name '*.so' -delete
	rm -f src/posledger/compiled.json
