# emowidgets: `make demo` (install + open the quickstart) and `make test` are the two commands.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared
CLIPS := $(SHARED)/assets/clips
FER_PYTHON ?= $(HOME)/.cache/emowidgets/fervenv/bin/python

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv with pinned versions (idempotent)

demo: install  ## open notebooks/quickstart.ipynb in JupyterLab
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/quickstart.ipynb

lint: install
	$(BIN)/ruff check emowidgets tests benchmarks
	$(BIN)/mypy

test: install lint  ## the whole suite, real-browser tests included; the 15 slowest tests listed at the end
	$(BIN)/pytest -q --durations=15

test-fast: install lint  ## the kernel-side tests only (no JupyterLab, no Chromium)
	$(BIN)/pytest -q --durations=15 --ignore-glob='tests/test_browser_*.py'

bench: install  ## benchmarks: each prints one JSON object on its last stdout line
	$(BIN)/python benchmarks/model_latency.py --model main --json
	$(BIN)/python benchmarks/model_latency.py --model fast --json
	$(BIN)/python benchmarks/pipeline.py --clip $(CLIPS)/single_face.mp4 --json
	$(BIN)/python benchmarks/cold_start.py --model main --json
	$(BIN)/python benchmarks/tracking.py --json
	if [ -x $(FER_PYTHON) ]; then $(BIN)/python benchmarks/vs_fer.py --clip $(CLIPS)/single_face.mp4 --fer-python $(FER_PYTHON) --json; \
	else echo "skipping benchmarks/vs_fer.py: no fer venv at $(FER_PYTHON) (see the script's docstring)"; fi
	$(BIN)/python benchmarks/live_browser.py --clip $(CLIPS)/single_face.mp4 --seconds 15 --json
	$(BIN)/python benchmarks/gallery.py --faces 25 --size 1280x720 --model fast --json
	$(BIN)/python benchmarks/gallery.py --faces 49 --size 1920x1080 --model fast --json
	$(BIN)/python benchmarks/gallery.py --faces 49 --size 1920x1080 --model fast --reorder --json
	$(BIN)/python benchmarks/classview_browser.py --faces 25 --size 1280x720 --seconds 15 --source camera --style plain --json
	$(BIN)/python benchmarks/classview_browser.py --faces 49 --size 1920x1080 --seconds 15 --source camera --json
	$(BIN)/python benchmarks/crop_resolution.py --model fast --json
	$(BIN)/python benchmarks/fewshot_fit.py --json
	$(BIN)/python benchmarks/fewshot_contempt.py --shots 1 5 20 --json
	$(BIN)/python benchmarks/autocalib_people.py --model main --json
	$(BIN)/python benchmarks/attention_people.py --model fast --json
	$(BIN)/python benchmarks/attention_clip.py --model fast --seconds 80 --json
	$(BIN)/python benchmarks/phantoms.py --json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
