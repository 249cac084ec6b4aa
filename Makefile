# edgecomp: `make demo` and `make test` work on a fresh machine (they set up .venv first).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
EXAMPLE := examples/shopping_intent
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: install demo test test-fast bench lint example clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# The float teacher is trained once (about a minute) and reused.
$(EXAMPLE)/model.keras: $(STAMP) $(EXAMPLE)/data/train.jsonl
	$(BIN)/python $(EXAMPLE)/train_teacher.py

example: $(EXAMPLE)/model.keras

demo: install example
	$(BIN)/edgecomp convert $(EXAMPLE)/model.keras --recipe $(EXAMPLE)/recipe.yaml

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install example
	$(BIN)/python benchmarks/bench_convert.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf build dist .pytest_cache
