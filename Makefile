# mnist-bot: `make run` to try it, `make test` to check it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Two installs: running needs the core only (LiteRT, no TensorFlow); the tests need everything.
RUN_STAMP := $(VENV)/.installed-run
NOTEBOOK_STAMP := $(VENV)/.installed-notebook
TEST_STAMP := $(VENV)/.installed-test
MNIST_DIR ?= $(abspath ../shared/mnist)
export MNIST_DIR

# Debian packages the tests use: Chromium drives the widget in a browser, PostgreSQL and nginx
# serve the deployment tests. `make test` installs the missing ones where it may (root or
# password-less sudo); elsewhere it says how, and those tests skip. CI (CI=true) requires them.
SYSTEM_PACKAGES := chromium postgresql nginx
REQUIRE_SYSTEM_PACKAGES ?= $(CI)

.PHONY: run bot notebook install install-test system-packages test test-fast lint format bench train \
	evaluate clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(NOTEBOOK_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[notebook]"
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[dev,train]"
	touch $@

install: $(RUN_STAMP)  ## what running the bot needs (no TensorFlow)

install-test: $(TEST_STAMP)  ## everything: tests, linters, notebooks, training (TensorFlow)

system-packages:  ## install the missing SYSTEM_PACKAGES with apt-get, or say how to
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$pkg"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=no; fi; \
	if [ "$$sudo" != no ] && command -v apt-get >/dev/null; then \
		echo "Installing the system packages the tests need:$$missing"; \
		$$sudo apt-get -qq -o DPkg::Lock::Timeout=600 update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
			$$missing >/dev/null && exit 0; \
	fi; \
	echo "*** Missing system packages:$$missing. $(if $(REQUIRE_SYSTEM_PACKAGES),CI needs them.,The tests that need them will skip.)"; \
	echo "*** Install them (Debian/Ubuntu) with: sudo apt-get install$$missing"; \
	[ -z "$(REQUIRE_SYSTEM_PACKAGES)" ]

run: $(RUN_STAMP)  ## start the bot if TELEGRAM_BOT_TOKEN is set, else the notebook demo
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ] || grep -qs '^TELEGRAM_BOT_TOKEN=.' .env; then \
		$(MAKE) --no-print-directory bot; \
	else \
		echo "No TELEGRAM_BOT_TOKEN found (environment or .env)."; \
		echo "To run the Telegram bot: open Telegram, talk to @BotFather, send /newbot, and put"; \
		echo "  TELEGRAM_BOT_TOKEN=123456:ABC...  in a file named .env here, then run 'make run' again."; \
		echo "Meanwhile, opening the drawing widget demo in JupyterLab..."; \
		$(MAKE) --no-print-directory notebook; \
	fi

bot: $(RUN_STAMP)  ## run the Telegram bot (long polling)
	$(BIN)/mnist-bot bot

notebook: $(NOTEBOOK_STAMP)  ## open the widget demo in JupyterLab
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) widgets/demo.ipynb

test: $(TEST_STAMP) system-packages  ## install everything, run the whole test suite (what CI runs)
	$(BIN)/pytest

test-fast: $(TEST_STAMP)  ## skip slow and end-to-end tests
	$(BIN)/pytest -m "not slow and not e2e"

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(TEST_STAMP)  ## speed, memory, robustness and bot load benchmarks
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/robustness.py
	$(BIN)/python benchmarks/pages.py
	$(BIN)/python benchmarks/page_speed.py
	$(BIN)/python benchmarks/bench_bot_load.py

HANDWRITING_DIR ?= $(abspath ../shared/handwriting)

EXTRA = $(BIN)/mnist-bot make-extra --handwriting-dir $(HANDWRITING_DIR)

train: $(TEST_STAMP)  ## retrain the shipped models (about an hour and a half on 2 cores)
	for arch in dense mlp mlp2; do $(BIN)/mnist-bot train --arch $$arch || exit 1; done
	# The extra data is rendered in parts, two at once (one per core): photos, drawings and
	# UNIPEN writers; digits cut from photos of numbers (five parts); a second drawing of each
	# UNIPEN sample.
	$(EXTRA) build/extra_a.npz --photos 15000 --canvases 6000 --unipen-renders 2 --seed 11 & part=$$!; \
	$(EXTRA) build/extra_b.npz --photos 0 --canvases 0 --unipen-renders 0 --numbers 4000 --seed 12 && wait $$part
	$(EXTRA) build/extra_c.npz --photos 0 --canvases 0 --unipen-renders 2 --seed 13 & part=$$!; \
	$(EXTRA) build/extra_d.npz --photos 0 --canvases 0 --unipen-renders 0 --numbers 4000 --seed 14 && wait $$part
	$(EXTRA) build/extra_e.npz --photos 0 --canvases 0 --unipen-renders 0 --numbers 4000 --seed 15 & part=$$!; \
	$(EXTRA) build/extra_f.npz --photos 0 --canvases 0 --unipen-renders 0 --numbers 4000 --seed 16 && wait $$part
	$(EXTRA) build/extra_g.npz --photos 0 --canvases 0 --unipen-renders 0 --numbers 4000 --seed 17
	$(BIN)/mnist-bot train --arch cnn --epochs 12 --seed 1 \
		--extra-data build/extra_a.npz --extra-data build/extra_b.npz --extra-data build/extra_c.npz \
		--extra-data build/extra_d.npz --extra-data build/extra_e.npz --extra-data build/extra_f.npz \
		--extra-data build/extra_g.npz
	# The "not a digit" head reads the CNN's frozen features; it rewrites models/cnn.tflite with
	# a second output (P(digit)) and adds its rule to models/cnn.json.
	$(BIN)/mnist-bot train-reject --handwriting-dir $(HANDWRITING_DIR)

evaluate: $(TEST_STAMP)
	$(BIN)/mnist-bot evaluate --report reports/cnn

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache reports
