# Two commands for a newcomer: `make run` (set up, then the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data

.PHONY: setup run test test-slow lint model chords text-tuning constraints clean

$(STAMP): pyproject.toml constraints.txt scripts/system-deps
	scripts/system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	# musicnn ships the pretrained weights of the musicnn-msd front end; its own pins do not install on 3.11.
	$(BIN)/pip install --quiet --no-deps -c constraints.txt musicnn==0.1.0
	touch $(STAMP)

setup: $(STAMP)

HOST ?= 127.0.0.1
PORT ?= 8000
DEMO := $(DATA)/demo

# The main job: a demo catalogue of 300 generated clips (not the clips the default model trained on), ingested
# with the built-in default model (idempotent: a second run adds nothing), then the service at http://HOST:PORT/.
run: $(STAMP)
	test -f $(DEMO)/manifest.jsonl || $(BIN)/moodspace corpus synth --n 300 --seconds 30 --seed 7 --out $(DEMO)
	MOODSPACE_DATA_DIR=$(DATA) $(BIN)/moodspace ingest $(DEMO)/manifest.jsonl
	MOODSPACE_DATA_DIR=$(DATA) $(BIN)/moodspace serve --host $(HOST) --port $(PORT)

# The suite runs the service against SQLite and a real PostgreSQL (scripts/postgres starts one if none answers).
test: $(STAMP)
	scripts/postgres
	$(BIN)/python -m pytest

# Long checks: fuzzing over the whole API, kill -9 during a reindex, a full disk, real-HTTP load.
test-slow: $(STAMP)
	scripts/postgres
	timeout 900 $(BIN)/python -m pytest -m slow

# Re-pin every dependency after a change to pyproject.toml.
constraints: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/' > constraints.txt.new
	(sed -n '1,2p' constraints.txt; cat constraints.txt.new) > constraints.txt.tmp  # the header stays
	mv constraints.txt.tmp constraints.txt && rm constraints.txt.new

# Retrain the built-in default model (models/default_bundle) and its model card.
model: $(STAMP)
	$(BIN)/moodspace retrain-default

# The shipped helpers of the front end: the chord recognizer (rendered MIDI) and the small student of musicnn.
SHARED ?= ../shared/datasets
chords: $(STAMP)
	$(BIN)/moodspace train-chords --shared $(SHARED) --out models/chord_recognizer.npz
# The sentence encoder's tuned top layers (EmoBank, Warriner), then the default's text side retrained on them.
text-tuning: $(STAMP)
	$(BIN)/moodspace tune-text --emobank $(SHARED)/emobank --warriner $(SHARED)/warriner2013 --out models/text_tuning.pt
	$(BIN)/moodspace retrain-default --shared $(SHARED) --keep-music

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DATA)
