# Developer and CI entry points. `make test` is what .ci/run (and CI) runs.
.PHONY: venv tools servers lint test test-fast demo readme bench bench-readme

VENV := .venv
AZURITE := tools/node_modules/.bin/azurite

venv:
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	PYTHONWARNINGS=ignore $(VENV)/bin/pip install -q -e '.[dev]'
	@# Where PYTHONDONTWRITEBYTECODE is set (as on these machines), nothing writes portabind's own
	@# bytecode, and every test process would compile the modules again (seconds per session).
	$(VENV)/bin/python -m compileall -q -x '/templates/' src bindings adapters

# Node-based emulators (Azurite), pinned by tools/package-lock.json; reinstalled only when
# the lock file is newer than the installed binary.
tools: $(AZURITE)
$(AZURITE): tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund
	touch $@

# Server binaries from Debian that the tests start themselves (on free ports).
servers:
	command -v victoria-metrics >/dev/null || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends victoria-metrics; }

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: export PORTABIND_AZURITE := $(CURDIR)/$(AZURITE)
test: export HYPOTHESIS_PROFILE := full
test: venv tools servers
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/python -m pytest -q

# The fast tier: every test that needs no server, on every core.
test-fast: venv
	$(VENV)/bin/python -m pytest -q -m "not server" -n auto

demo: venv
	$(VENV)/bin/portabind run samples/orders --components samples/orders/components/aws --emulate \
		--send 'orders={"id": 1, "item": "book", "qty": 2}' \
		--send 'orders={"id": 2, "item": "pen", "qty": 10}' --exit-after 2

# The README's support matrix is generated from the code; tests/test_readme.py checks it.
readme: venv
	$(VENV)/bin/python scripts/readme_matrix.py README.md

# The benchmark suite (benchmarks/suite.py, the contract in benchmarks/README.md): every
# benchmarks/<name>.py with its --quick run counts, one table. Never part of `make test`.
bench: export PORTABIND_AZURITE := $(CURDIR)/$(AZURITE)
bench: venv tools
	$(VENV)/bin/python benchmarks/suite.py

# The same, writing the table into the README's Benchmarks section.
bench-readme: export PORTABIND_AZURITE := $(CURDIR)/$(AZURITE)
bench-readme: venv tools
	$(VENV)/bin/python benchmarks/suite.py --write-readme README.md
