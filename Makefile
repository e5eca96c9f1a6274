# hongbao-testbed: `make run` runs the main job, `make test` runs every test.
# Both create .venv and install what they need (Debian packages too, when root).

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
# Every 'make run' is a run of its own: its points and report never mix with an earlier one.
RUN_ID ?= lab-$(shell date +%Y%m%d-%H%M%S)

.PHONY: run seed demo test lint lab-down debian-packages clean clean-machine

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

# Three workers: molecule, the playbooks' lab and the loopback loads each take one, and the
# short modules fill whichever frees first (tests/conftest.py groups what shares a resource).
TEST_WORKERS ?= 3

test: $(STAMP) debian-packages lint
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The main job: the 19-host lab, phases 1 -> 2 -> 3 at a tenth of the seed, the report.
run: $(STAMP) debian-packages
	$(VENV)/bin/hongbao lab up
	$(VENV)/bin/ansible-playbook playbooks/run.yml -e testbed_run_id=$(RUN_ID)
	@echo "== the lab and its InfluxDB stay up for a look; 'make lab-down' removes them"

# The seed itself on the lab: 1,000,000 connections, 30k then 60k QPS, 60 s phases, then
# the knee search. Needs about 15 GB of memory and both cores for minutes: run it alone.
# On a 2-core box phase 1 takes about 2 min (about 9,000 logins/s), the whole run about 45.
SEED_RUN_ID ?= seed-$(shell date +%Y%m%d-%H%M%S)
seed: $(STAMP) debian-packages
	$(VENV)/bin/hongbao lab up
	$(VENV)/bin/ansible-playbook playbooks/seed.yml -e testbed_run_id=$(SEED_RUN_ID) \
	  -e testbed_scale=1.0 -e testbed_phase_seconds=60 -e testbed_connect_timeout_seconds=1800
	@echo "== the lab stays up for a look; 'make lab-down' removes it"

# Phases 1 -> 2 -> 3 with local processes only (no lab, no Ansible): about a minute.
demo: $(STAMP)
	$(VENV)/bin/hongbao local-run

lab-down: $(STAMP)
	-$(VENV)/bin/ansible-playbook playbooks/teardown.yml
	$(VENV)/bin/hongbao lab down

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

# Everything the runs and tests left outside the checkout: venvs, lab, daemons, data.
clean-machine:
	bash scripts/clean-machine.sh
