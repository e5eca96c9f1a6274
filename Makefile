# hongbao-testbed: `make run` runs the main job, `make test` runs every test.
# Both create .venv and install what they need (Debian packages too, when root).

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: run test lint debian-packages clean

$(STAMP): pyproject.toml
	@echo "== creating $(VENV) and installing hongbao-testbed with its test extras"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

debian-packages:
	@bash scripts/install-debian-packages.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) debian-packages lint
	$(VENV)/bin/pytest -q

run: $(STAMP) debian-packages
	$(VENV)/bin/hongbao local-run

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
