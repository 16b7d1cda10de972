# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SENSEQUANT_HOME ?= $(CURDIR)
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: setup lock system-packages run test lint ui bench clean

# Every install comes from the committed lock: exact versions with their hashes, nothing
# resolved on the day. A changed lock rebuilds the venv, so nothing outside it lingers.
LOCK := requirements.lock
LOCK_INPUTS := pyproject.toml requirements-tools.in

$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 2; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-resolve the lock on purpose: `make lock` keeps every pin it can and adds or drops what
# pyproject.toml changed; `make lock UPGRADE=1` moves everything to the newest allowed version.
# uv comes from the lock itself, installed with pip into the venv.
lock:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet "$$(grep -Eo '^uv==[^ ]+' $(LOCK))"
	$(BIN)/uv pip compile $(LOCK_INPUTS) --extra dev --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" --quiet $(if $(UPGRADE),--upgrade) -o $(LOCK)
	rm -f $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

setup: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

# PostgreSQL and Chromium for the production-shape tests (skipped, with a note, without root)
system-packages:
	@scripts/install_system_packages.sh

run: setup
	$(BIN)/sensequant historical-run --symbols RELIANCE,TCS --start-date 2024-01-01 --end-date 2024-12-31

# Whole test files go to TEST_WORKERS processes (--dist loadfile keeps a file's fixtures in one).
TEST_WORKERS ?= 2
test: setup system-packages
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ui: setup
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: setup system-packages
	$(BIN)/python bench/bench_backfill.py
	$(BIN)/python bench/bench_daily_update.py
	$(BIN)/python bench/bench_breeze_calls.py
	$(BIN)/python bench/bench_training.py
	$(BIN)/python bench/bench_calibration.py
	$(BIN)/python bench/bench_instance_storage.py
	$(BIN)/python bench/bench_bookkeeping.py
	$(BIN)/python bench/bench_full_run.py
	$(BIN)/python bench/bench_reward_loop.py
	$(BIN)/python bench/drill_faults.py

clean:
	rm -rf $(VENV) data/dagster_home data/raw data/*.duckdb data/breeze data/breeze_calls.sqlite
