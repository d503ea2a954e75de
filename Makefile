# Two commands for a newcomer (Python 3.11+ and make are all it takes):
#   make run    installs everything into the project, migrates, loads a small synthetic city and
#               starts the gateway and the four services on the embedded default (SQLite, no Redis)
#   make test   installs everything and runs the whole test suite (PostgreSQL and Redis when
#               DATABASE_URL and REDIS_URL are set, the embedded default otherwise)
# and `make bench` (ONLY=NAME for one benchmark).

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
ONLY ?=
SCALE ?= 0.02

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: install run test bench lock clean

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

# --compile-bytecode: the dependencies' bytecode written once, at install. Where
# PYTHONDONTWRITEBYTECODE is set (as on the CI machines) Python never writes it, so every process
# -- each service, each test suite, each server a test starts -- compiled FastAPI, SQLAlchemy,
# pydantic and the rest from source again: importing the registry and the gateway took 4.9 s
# instead of 2.1 (10 s more at install, once).
$(VENV)/.installed: uv.lock pyproject.toml Makefile $(UV)
	$(UV) sync --all-packages --frozen --quiet --compile-bytecode
	@touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/python scripts/devsuite.py --scale $(SCALE)

test: install
	$(VENV)/bin/python scripts/run_tests.py

bench: install
	$(VENV)/bin/python -m bench $(ONLY)

lock: $(UV)
	$(UV) lock

clean:
	rm -rf var bench/results .pytest_cache
