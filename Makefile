# xaudit developer entry points. Every target sets itself up on first use:
# a cached Python venv with torch==2.13.0 (libtorch for tch), then the release build.
SHELL := /bin/bash
XAUDIT_VENV ?= $(HOME)/.cache/xaudit/venv-torch-2.13.0
export XAUDIT_VENV
# torch-sys finds libtorch through the venv's python (LIBTORCH_USE_PYTORCH).
export VIRTUAL_ENV := $(XAUDIT_VENV)
export PATH := $(XAUDIT_VENV)/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
# Tests and proptest runs are reproducible: fixed case count and seed.
export PROPTEST_CASES ?= 64
export PROPTEST_RNG_SEED ?= 20261122
CARGO ?= cargo
XAUDIT := target/release/xaudit

.PHONY: all env build demo test fmt fixtures bench clean-env schema wheel examples

all: build

env:
	@bash scripts/setup-env.sh

build: env
	$(CARGO) build --release --locked

# The main job on the bundled fixtures: heatmaps for the digits CNN and the face classifier,
# then the robustness gate on the digits CNN.
demo: build
	$(XAUDIT) doctor fixtures/models/digits_cnn_s0.pt --config fixtures/digits.toml
	$(XAUDIT) explain fixtures/models/digits_cnn_s0.pt fixtures/data/digits_demo.csv \
	  --config fixtures/digits.toml --method grad-cam --out reports/demo/digits-grad-cam
	$(XAUDIT) explain fixtures/models/digits_cnn_s0.pt fixtures/data/digits_demo.csv \
	  --config fixtures/digits.toml --method integrated-gradients --out reports/demo/digits-ig
	$(XAUDIT) explain fixtures/models/onet_face.pt fixtures/data/faces_demo.csv \
	  --config fixtures/faces.toml --method smoothgrad --out reports/demo/faces-smoothgrad
	@echo "heatmaps written under reports/demo/"
	@# The gate: robustness suite on the digits CNN (exit 1 = some audits failed, which is
	@# the honest answer for this fixture; the report is written either way). The CNN is
	@# ReLU, so the attacks take their gradients through its softplus surrogate.
	@status=0; $(XAUDIT) check fixtures/models/digits_cnn_s0.pt --suite robustness \
	  --config fixtures/digits.toml --data fixtures/data/digits/test --max-images 40 \
	  --surrogate fixtures/models/digits_cnn_s0_softplus.pt \
	  --out-dir reports/demo/check || status=$$?; \
	  echo "xaudit check exit code: $$status (0 pass, 1 gate failed, 2 error)"; \
	  test $$status -le 1

test: build
	$(CARGO) test --release --locked
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

# The pip wheel (pyproject.toml) in target/wheels/: the xaudit binary alone, which finds
# libtorch in the torch==2.13.0 package of the environment it is installed into (build.rs).
# maturin (pinned, installed into the venv on first use) packs the release build above
# without rebuilding it; no auditwheel repair, so libtorch is never copied into the wheel.
MATURIN_VERSION := 1.16.0
wheel: build
	@$(XAUDIT_VENV)/bin/maturin --version 2>/dev/null | grep -qx 'maturin $(MATURIN_VERSION)' || \
	  $(XAUDIT_VENV)/bin/pip install --no-input --quiet --disable-pip-version-check 'maturin==$(MATURIN_VERSION)'
	rm -f target/wheels/xaudit-*.whl
	$(XAUDIT_VENV)/bin/maturin build --release --locked --compatibility linux --auditwheel skip \
	  --out target/wheels

# Regenerates the committed example in reports/examples/: report.html and report.md of a small
# fixture run (sanity suite, digits CNN, saliency and Grad-CAM, 40 images) and a screenshot of
# the HTML as headless Chromium renders it, all written by the browser test (tests/browser.rs;
# scripts/ensure-chromium.sh installs Chromium when missing). About a minute once built.
examples: build
	rm -f reports/examples/report.html reports/examples/report.md reports/examples/report.png
	XAUDIT_EXAMPLES_DIR=reports/examples $(CARGO) test --release --locked --test browser -- \
	  --exact html_report_renders_in_chromium_without_errors_or_requests --nocapture

# The benchmark (bench/RESULTS.md): model ceilings, audit efficiency, xaudit vs Quantus +
# Captum in the bench's own venv, scaling. Machine-dependent numbers; nothing asserted.
# About 30 minutes on 2 CPU cores; BENCH_DEVICE=cuda runs it on a GPU.
bench: build
	bash scripts/bench.sh

fmt:
	$(CARGO) fmt

# Regenerates docs/report.schema.json from the report types (a test checks it is current).
schema: build
	$(XAUDIT) schema > docs/report.schema.json

# Rebuilds every fixture (models, images, Captum golden maps); the results are committed.
fixtures:
	@bash scripts/setup-env.sh --fixtures
	python fixtures/build_fixtures.py

clean-env:
	rm -rf $(XAUDIT_VENV)
