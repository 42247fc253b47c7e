# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test lint typecheck pytest browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch first: a bare `torch` requirement would pull a multi-GB CUDA build; 2.13.0 is a local CPU wheel.
$(STAMP): $(PY) pyproject.toml
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,openvino]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/xlingual demo

lint: $(STAMP)
	$(VENV)/bin/ruff check xlingual tests eval
	$(VENV)/bin/ruff format --check xlingual tests eval

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The search-page test drives a real headless browser: Debian's chromium and chromium-driver.
# Idempotent: nothing happens when both are on PATH. As root (CI) it installs them and fails loudly if it
# cannot; otherwise it says how, and the browser test skips with that reason.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = "0" ]; then \
		echo "installing Debian's chromium and chromium-driver for the search-page test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "chromium/chromedriver missing and not root: the browser test will be skipped" \
		     "(sudo apt-get install chromium chromium-driver)"; \
	fi

pytest: $(STAMP) browser
	$(PY) -m pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
