# Two commands for a newcomer: `make run` (set up, then the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data

.PHONY: setup run test lint clean

$(STAMP): pyproject.toml scripts/system-deps
	scripts/system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# The main job: generate the demo corpus (200 labelled 30 s clips) with the built-in generator.
run: $(STAMP)
	$(BIN)/moodspace corpus synth --n 200 --seconds 30 --seed 0 --out $(DATA)/demo --overwrite

# The suite runs the service against SQLite and a real PostgreSQL (scripts/postgres starts one if none answers).
test: $(STAMP)
	scripts/postgres
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DATA)
