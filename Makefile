# GridWatch: `make demo` runs the whole stack on embedded defaults; `make test` runs the test suite.
# Both bootstrap what they need first (system packages, then .venv) and are quick on a second run.
# The tests start their own Redis and PostgreSQL; `make screenshots` refreshes the README's screenshots.

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.gridwatch-installed
PYTEST_ARGS ?=

.PHONY: demo test screenshots bootstrap system-packages lint bench clean

demo: bootstrap
	$(VENV)/bin/gridwatch up --demo

test: bootstrap
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

screenshots: bootstrap
	GRIDWATCH_UPDATE_SCREENSHOTS=1 $(VENV)/bin/python -m pytest tests/console/test_console_browser.py tests/console/test_console_clips.py $(PYTEST_ARGS)

bootstrap: system-packages $(STAMP)

system-packages:
	@bash scripts/system-packages.sh

$(STAMP): pyproject.toml scripts/bootstrap-venv.sh
	@VENV=$(VENV) PYTHON=$(PYTHON) bash scripts/bootstrap-venv.sh
	@touch $(STAMP)

lint: bootstrap
	$(VENV)/bin/ruff check contracts ingest detection center_api gridwatch tests bench
	$(VENV)/bin/mypy contracts ingest detection center_api gridwatch

bench: bootstrap
	$(VENV)/bin/python bench/ingest.py
	$(VENV)/bin/python bench/detect.py
	$(VENV)/bin/python bench/center.py

clean:
	rm -rf $(VENV) .gridwatch .pytest_cache build/screenshots
