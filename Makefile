# The two set-up commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo serve test lint test-tools

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	# The CPU build of torch first: a plain `torch` requirement would fetch a CUDA build.
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[dev,s3]'
	touch $@

demo: $(INSTALLED)  ## demo catalogue + demo model (made once), import, serve on :8000
	$(VENV)/bin/vitrine demo

serve: $(INSTALLED)  ## serve the local profile with VITRINE_MODEL
	$(VENV)/bin/vitrine serve

# Debian packages the tests drive for real: Chromium (never a downloaded browser), a
# redis-server of their own to restart, docker-compose to validate the compose file.
TEST_TOOLS := /usr/bin/chromium:chromium /usr/bin/redis-server:redis-server \
	/usr/bin/docker-compose:docker-compose
test-tools:
	@missing=$$(for t in $(TEST_TOOLS); do [ -x $${t%%:*} ] || echo $${t##*:}; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq $$missing >/dev/null; fi

test: $(INSTALLED) test-tools lint  ## lint and types, then every test: unit, API, integration, browser
	$(PY) -m pytest

lint: $(INSTALLED)  ## ruff over the tree, mypy over the production packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
