#!/usr/bin/env bash
# make bench: model ceilings, audit efficiency, xaudit vs Quantus + Captum, scaling.
# Writes bench/RESULTS.md and bench/results.json. A benchmark, not a test: nothing here is
# asserted and CI never runs it. BENCH_DEVICE=cuda runs it on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-bench-env.sh >&2
PY="${XAUDIT_BENCH_VENV:-$HOME/.cache/xaudit/venv-bench}/bin/python"
"$PY" bench/build_models.py
"$PY" bench/run.py "$@"
