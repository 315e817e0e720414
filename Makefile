# emowidgets: `make demo` (install + open the quickstart) and `make test` are the two commands; `make report
# LOG=class_log_....parquet` writes the after-class report, `make app` serves the class view alone (Voilà).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared
CLIPS := $(SHARED)/assets/clips
FER_PYTHON ?= $(HOME)/.cache/emowidgets/fervenv/bin/python

LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: install demo report app test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test,names]"
	$(BIN)/pip install -q --no-deps -c constraints.txt rapidocr  # its opencv-python-headless would clobber cv2
	touch $(STAMP)

install: $(STAMP)  ## create .venv with pinned versions (idempotent)

# JupyterLab's "get notified about Jupyter news?" toast would sit over the widgets: the venv's JupyterLab never asks
$(LAB_SETTINGS): $(STAMP)
	mkdir -p $(dir $@)
	printf '%s\n' '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $@

define SHELL_HINT
@echo ""
@echo "The emowidgets command is in .venv: run it as .venv/bin/emowidgets (e.g. .venv/bin/emowidgets report LOG),"
@echo "or first 'source .venv/bin/activate' in this shell. Also: make report LOG=class_log_....parquet, make app."
endef

demo: install $(LAB_SETTINGS)  ## open notebooks/quickstart.ipynb in JupyterLab, the repo root in its file browser
	$(SHELL_HINT)
	$(BIN)/jupyter lab $(ALLOW_ROOT) --ServerApp.root_dir=$(CURDIR) \
		--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate notebooks/quickstart.ipynb
	$(SHELL_HINT)

report: install  ## the after-class HTML report of a class log: make report LOG=class_log_....parquet
	@test -n "$(LOG)" || { echo "usage: make report LOG=class_log_YYYYmmdd_HHMMSS.parquet"; exit 2; }
	$(BIN)/emowidgets report "$(LOG)"

app: install  ## the class view alone, for a second screen (Voilà on notebooks/classroom_app.ipynb)
	$(BIN)/voila notebooks/classroom_app.ipynb

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
	$(BIN)/python benchmarks/face_check.py --json
	$(BIN)/python benchmarks/report_cost.py --rows 1000000 --ids 5000 --json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
