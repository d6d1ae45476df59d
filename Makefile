# The two set-up commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo serve test lint browser

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	# The CPU build of torch first: a plain `torch` requirement would fetch a CUDA build.
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

demo: $(INSTALLED)  ## demo catalogue + demo model (made once), import, serve on :8000
	$(VENV)/bin/vitrine demo

serve: $(INSTALLED)  ## serve the local profile with VITRINE_MODEL
	$(VENV)/bin/vitrine serve

browser:  ## Debian's Chromium for the browser tests (never a downloaded one)
	@[ -x /usr/bin/chromium ] || ($(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq chromium >/dev/null)

test: $(INSTALLED) browser  ## every test: unit, API, integration (Redis, Celery), browser
	$(PY) -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
