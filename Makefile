# emowidgets: `make demo` (install + open the quickstart) and `make test` are the two commands.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv with pinned versions (idempotent)

demo: install  ## open notebooks/quickstart.ipynb in JupyterLab
	$(BIN)/jupyter lab notebooks/quickstart.ipynb

lint: install
	$(BIN)/ruff check emowidgets tests benchmarks
	$(BIN)/mypy

test: install lint  ## the whole suite, real-browser tests included
	$(BIN)/pytest -q

bench: install  ## benchmarks: JSON on the last stdout line of each
	$(BIN)/python benchmarks/pipeline.py --clip ../shared/assets/clips/single_face.mp4 --json
	$(BIN)/python benchmarks/live_browser.py --clip ../shared/assets/clips/single_face.mp4 --seconds 15 --json
	$(BIN)/python benchmarks/gallery.py --faces 25 --size 1280x720 --json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
