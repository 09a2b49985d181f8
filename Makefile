# Documented entry points. `make setup` then `make test` on a fresh clone.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= /usr/share/datasets/fashion-mnist
# pip index for the torch wheel; empty = whatever `pip install torch==<pin>` resolves to (on
# PyPI for Linux x86_64: the CUDA build). CPU build on purpose:
# make setup TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=

.PHONY: setup data browser loadgen test test-fast lint format protos clean

setup: $(BIN)/.installed data browser loadgen

$(BIN)/.installed: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) torch==2.13.0
	$(BIN)/pip install -q -e '.[torch,dev,digital]'
	touch $@

# Fashion-MNIST IDX files from Debian's dataset-fashion-mnist (nothing is downloaded at run time)
data:
	@if ls $(DATA_DIR)/train-images-idx3-ubyte* >/dev/null 2>&1; then \
	  echo "Fashion-MNIST present in $(DATA_DIR)"; \
	elif command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	else echo "Fashion-MNIST missing: put the four IDX files in $(DATA_DIR) or pass --data-dir"; fi

# Debian chromium for the browser test (tests/device/test_web_page.py, marker `browser`);
# Playwright drives /usr/bin/chromium, no browser is downloaded. Never fails setup.
browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium present in /usr/bin/chromium"; \
	elif command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; } \
	  || echo "note: could not install chromium; the browser test will be skipped"; \
	else echo "note: no apt-get; install chromium at /usr/bin/chromium or the browser test is skipped"; fi

# Debian's hey, the compiled HTTP load generator of `python -m tools.bench --generator hey`
# (the bench falls back to its Python generator without it). Never fails setup.
loadgen:
	@if command -v hey >/dev/null; then echo "hey present: $$(command -v hey)"; \
	elif command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq hey; } \
	  || echo "note: could not install hey; the bench uses its Python generator"; \
	else echo "note: no apt-get; install hey for --generator hey"; fi

# two pytest-xdist workers (most tests wait on real processes and sockets, so two share two
# cores well); tests of one module stay in one worker, so a module's live stack starts once.
# TEST_WORKERS=0 runs them in this process. First the quick models the tests share are trained where
# missing or stale, two at once on one thread each (tests/quick_models.py).
TEST_WORKERS ?= 2
test:
	$(BIN)/python -m tests.quick_models
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope)

# ruff (lint + format check) and the import contracts in pyproject.toml ([tool.importlinter])
lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# --- demos (device engineer) ---------------------------------------------------------------
# `make compose-demo`: edge, channel and device in containers; the one-shot `client` service sends test
# images and its exit code is the target's. `make compose-demo TASK=reconstruction` serves the
# image model (artifacts/image, trained by `python -m trainer train-image --quick` if missing). COMPOSE defaults to `docker compose`, or to the
# podman wrapper ../shared/tools/compose-podman/compose.sh when there is no docker.
COMPOSE ?= $(shell if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; \
	then echo "docker compose"; \
	elif [ -x ../shared/tools/compose-podman/compose.sh ]; then echo ../shared/tools/compose-podman/compose.sh; \
	else echo docker-compose; fi)
# TASK=reconstruction serves the image model (Hyper-AJSCC deep JSCC) instead of a classifier
TASK ?= classification
MODEL ?= $(if $(filter reconstruction,$(TASK)),image,quick)
TRAIN_QUICK = $(if $(filter reconstruction,$(TASK)),train-image --quick,train --quick)

.PHONY: demo compose-demo

# `make demo`: trains the demo models into artifacts/demo/ once, then shows what β and the
# PSNR buy through the live stack; `make demo SERVE=1` keeps a stack up for the web page.
demo: setup
	$(BIN)/python scripts/demo.py $(if $(SERVE),--serve)

compose-demo:
	@command -v $(firstword $(COMPOSE)) >/dev/null 2>&1 || { \
	  echo "make compose-demo needs a compose runner, and '$(firstword $(COMPOSE))' was not found." >&2; \
	  echo "Install Docker with its Compose plugin ('docker compose'), or name another runner:" >&2; \
	  echo "  make compose-demo COMPOSE=../shared/tools/compose-podman/compose.sh   (podman)" >&2; \
	  echo "Without containers, 'make demo' runs the same services as local processes." >&2; \
	  exit 2; }
	test -f artifacts/$(MODEL)/manifest.json || $(BIN)/python -m trainer $(TRAIN_QUICK) --out artifacts/$(MODEL)
	MODEL=$(MODEL) $(COMPOSE) up --build --exit-code-from client; rc=$$?; \
	MODEL=$(MODEL) $(COMPOSE) down -v; exit $$rc

# --- experiments: paper figures -> reports/<name>/results.json + PNG, reports/README.md
# `make experiments-quick`: every experiment's 1-3 minute smoke version (reports/<name>-quick/).
# `make experiments`: the full runs (about 5 hours, one torch thread each), logs in logs/experiments/.
EXPERIMENTS := quantizer-bits variable-length vl-vfe vl-vfe-threshold snr-adaptivity train-once-vs-grid loss-weight-scan ranging-regression ranging-knee-scan cnn multi-device digital image-jscc fading

.PHONY: experiments experiments-quick report report-check

experiments-quick:
	for e in $(EXPERIMENTS); do $(BIN)/python -m trainer experiment $$e --quick || exit 1; done
	$(BIN)/python -m trainer report

experiments:
	mkdir -p logs/experiments
	for e in $(EXPERIMENTS); do \
	  $(BIN)/python -m trainer experiment $$e > logs/experiments/$$e.log 2>&1 || exit 1; \
	  $(BIN)/python -m trainer report; \
	done

report:
	$(BIN)/python -m trainer report

# every shown run whose model or experiment code changed since it ran, then every one whose
# models were timed on busy cores (exit 1 if any of either)
report-check:
	$(BIN)/python -m trainer report --check; stale=$$?; \
	$(BIN)/python -m trainer.experiments.report reports; busy=$$?; \
	test $$stale -eq 0 -a $$busy -eq 0
