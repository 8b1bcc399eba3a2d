#!/usr/bin/env bash
# Creates (once) the Python environment for the benchmark's *peer* side (bench/peers.py,
# bench/build_models.py): Quantus 0.6.0 + Captum + torchvision on top of the cached torch
# venv of scripts/setup-env.sh. The bench venv does not reinstall torch: a .pth file in its
# site-packages appends the torch venv's site-packages to sys.path, and everything that would
# pull torch (torchvision, captum, quantus) is installed with --no-deps; their remaining light
# dependencies are listed explicitly below. Silent when the cache is valid; prints the path of
# the bench venv's python on stdout at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VENV="${XAUDIT_VENV:-$HOME/.cache/xaudit/venv-torch-2.13.0}"
BENCH_VENV="${XAUDIT_BENCH_VENV:-$HOME/.cache/xaudit/venv-bench}"
# Exact pins. torchvision 0.28.0 is the release built against torch==2.13.0 (its metadata pins
# it). captum 0.8.0 (what Quantus 0.6 was tested with) declares numpy<2, which would shadow the
# torch venv's numpy 2; captum 0.9.0 is numpy-2 clean and is what the fixtures use.
# grad-cam (pytorch-grad-cam) 1.5.7 and torchray 1.0.0.2 are references of the method parity
# goldens (fixtures/cam_golden.py); ttach is grad-cam's one import the others do not bring,
# and torchray's attribution module needs none of its declared extras (pycocotools, pymongo).
NO_DEPS="quantus==0.6.0 captum==0.9.0 torchvision==0.28.0 grad-cam==1.5.7 ttach==0.0.3 torchray==1.0.0.2"
# Quantus 0.6.0's requirements that the torch venv does not provide (numpy, scipy,
# scikit-image, scikit-learn, tqdm, matplotlib come from there). opencv-python is declared by
# Quantus; the headless build of the same version avoids needing X/GL system libraries.
LIGHT="pandas==2.3.3 opencv-python-headless==4.14.0.94 cachetools==6.2.1"
SPEC="v3|$TORCH_VENV|$NO_DEPS|$LIGHT"
stamp="$BENCH_VENV/.xaudit-bench-ready"

# The torch venv (with scikit-learn / scikit-image / captum); silent if already valid.
if [ ! -f "$TORCH_VENV/.xaudit-ready-v1" ] || [ ! -f "$TORCH_VENV/.xaudit-fixtures-v1" ]; then
  bash scripts/setup-env.sh --fixtures
fi

if [ ! -x "$BENCH_VENV/bin/python" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$SPEC" ]; then
  echo "xaudit: setting up $BENCH_VENV (quantus 0.6.0 + captum + torchvision + grad-cam + torchray over $TORCH_VENV)" >&2
  rm -rf "$BENCH_VENV"
  mkdir -p "$(dirname "$BENCH_VENV")"
  python_bin="$(readlink -f "$TORCH_VENV/bin/python")"
  "$python_bin" -m venv "$BENCH_VENV"
  torch_site="$("$TORCH_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  bench_site="$("$BENCH_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$torch_site" > "$bench_site/xaudit-torch-venv.pth"
  pip=("$BENCH_VENV/bin/python" -m pip install --no-input --quiet --disable-pip-version-check)
  # Light deps first (with their own deps; numpy etc. are found in the torch venv), then the
  # torch-dependent packages without deps (this order also keeps pip from flagging the
  # headless-for-regular opencv substitution).
  # shellcheck disable=SC2086
  "${pip[@]}" $LIGHT
  # shellcheck disable=SC2086
  "${pip[@]}" --no-deps $NO_DEPS
  # torch must be the torch venv's (no second copy), and everything must import.
  "$BENCH_VENV/bin/python" - "$TORCH_VENV" <<'PY'
import os, sys
import torch, torchvision, captum, quantus, cv2, pandas, pytorch_grad_cam  # noqa: F401
import torchray.attribution.extremal_perturbation  # noqa: F401
venv = os.path.realpath(sys.argv[1])
assert os.path.realpath(torch.__file__).startswith(venv), torch.__file__
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
assert quantus.__version__ == "0.6.0", quantus.__version__
PY
  n_torch="$(find "$BENCH_VENV" -maxdepth 5 -type d -name torch -path '*site-packages*' | wc -l)"
  [ "$n_torch" = "0" ] || { echo "xaudit: a second torch was installed into $BENCH_VENV" >&2; exit 1; }
  echo "$SPEC" > "$stamp"
fi
echo "$BENCH_VENV/bin/python"
