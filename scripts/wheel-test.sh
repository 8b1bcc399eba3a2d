#!/usr/bin/env bash
# Installs the pip wheel the way a user does and runs it (tests/wheel.rs runs this script):
#   1. `make wheel`; the wheel must hold the xaudit binary and metadata only (no .so);
#   2. a FRESH venv (python3 -m venv, in a temporary folder, always deleted) gets
#      torch==2.13.0 from a wheel cache under ~/.cache/xaudit, then
#      `pip install --no-index --find-links WHEELHOUSE target/wheels/xaudit-*.whl`;
#   3. with nothing but PATH=/usr/bin:/bin and HOME in the environment (no VIRTUAL_ENV, no
#      LD_LIBRARY_PATH), the venv's bin/xaudit runs `doctor` and a small `check`, and the
#      libtorch it loads is the fresh venv's (ldd and LD_DEBUG), never the build venv's.
# Caches, filled on first use (a cold machine needs PyPI once; never skipped):
#   ~/.cache/xaudit/wheelhouse-torch-2.13.0  `pip download torch==2.13.0` (2.6 GB);
#   ~/.cache/xaudit/uv-cache                 uv's unpacked copy of it (4.5 GB): uv installs
#                                            torch into a fresh venv by hard links in a
#                                            fraction of a second, where pip unpacks for 30 s.
# The xaudit wheel itself is always installed by pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TORCH_VERSION="2.13.0"
UV_VERSION="0.13.9"
XAUDIT_VENV="${XAUDIT_VENV:-$HOME/.cache/xaudit/venv-torch-$TORCH_VERSION}"
CACHE="$HOME/.cache/xaudit"
WHEELHOUSE="$CACHE/wheelhouse-torch-$TORCH_VERSION"
export UV_CACHE_DIR="$CACHE/uv-cache"
PIP_FLAGS=(--no-input --disable-pip-version-check)

step() { echo "wheel-test: $* ($SECONDS s)"; }
fail() { echo "wheel-test: FAILED: $*" >&2; exit 1; }
for tool in make python3 flock ldd; do
  command -v "$tool" >/dev/null || fail "$tool is needed and not on PATH"
done

# 1. The wheel (sets up the build venv and the release build on first use).
step "make wheel"
make --no-print-directory wheel
shopt -s nullglob
wheels=(target/wheels/xaudit-*.whl)
[ "${#wheels[@]}" -eq 1 ] || fail "expected one target/wheels/xaudit-*.whl after make wheel, found ${#wheels[@]}"
wheel="$ROOT/${wheels[0]}"
python3 - "$wheel" <<'EOF' || fail "the wheel must hold only bin/xaudit and metadata"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
print("wheel-test: wheel contents:", *names, sep="\n  ")
data = [n for n in names if ".dist-info/" not in n]
so = [n for n in names if n.endswith(".so") or ".so." in n]
ok = not so and len(data) == 1 and data[0].endswith(".data/scripts/xaudit")
sys.exit(0 if ok else 1)
EOF

# uv (pinned) in the build venv.
uv="$XAUDIT_VENV/bin/uv"
if [[ "$("$uv" --version 2>/dev/null)" != "uv $UV_VERSION "* ]]; then
  step "installing uv==$UV_VERSION into $XAUDIT_VENV"
  "$XAUDIT_VENV/bin/pip" install "${PIP_FLAGS[@]}" --quiet "uv==$UV_VERSION"
fi

# 2. The fresh venv.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/xaudit-wheel-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
venv="$tmp/venv"
step "python3 -m venv $venv"
python3 -m venv "$venv"
py="$venv/bin/python"

install_torch() {
  "$uv" pip install --quiet --no-config --python "$py" --no-index --find-links "$WHEELHOUSE" "torch==$TORCH_VERSION"
}
step "torch==$TORCH_VERSION from $WHEELHOUSE"
mkdir -p "$CACHE"
(
  # One filler of the wheelhouse at a time; readers wait for it.
  flock 9
  if ! install_torch 2>"$tmp/uv.err"; then
    echo "wheel-test: the wheel cache lacks torch==$TORCH_VERSION for $("$py" -V); downloading it from PyPI (first run only)"
    "$venv/bin/pip" download "${PIP_FLAGS[@]}" --no-cache-dir --progress-bar off \
      "torch==$TORCH_VERSION" -d "$WHEELHOUSE"
    install_torch || { cat "$tmp/uv.err" >&2; exit 1; }
  fi
) 9>"$CACHE/wheelhouse-torch-$TORCH_VERSION.lock" \
  || fail "could not install torch==$TORCH_VERSION from $WHEELHOUSE (delete it to download again)"

step "pip install --no-index --find-links $WHEELHOUSE $(basename "$wheel")"
# --isolated: nothing from the caller's pip configuration or PIP_* variables.
"$venv/bin/pip" install --isolated "${PIP_FLAGS[@]}" --quiet --no-index --find-links "$WHEELHOUSE" "$wheel" \
  || fail "pip could not install the wheel"
xaudit="$venv/bin/xaudit"
[ -x "$xaudit" ] || fail "pip installed no $xaudit"

# 3. Run it with a clean environment.
clean=(env -i PATH=/usr/bin:/bin HOME="$HOME")
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
torchlib="$site/torch/lib"
[ -f "$torchlib/libtorch_cpu.so" ] || fail "no libtorch_cpu.so in the fresh venv's $torchlib"

step "xaudit doctor"
doctor="$("${clean[@]}" "$xaudit" doctor fixtures/models/digits_cnn_s0.pt --config fixtures/digits.toml)" \
  || fail "xaudit doctor exited $?"
echo "$doctor"
# doctor names the libtorch it loaded: the fresh venv's.
echo "$doctor" | grep -F "libtorch 2.13.0" | grep -qF "$(readlink -f "$torchlib")" \
  || echo "$doctor" | grep -F "libtorch 2.13.0" | grep -qF "$torchlib" \
  || fail "xaudit doctor does not report the fresh venv's libtorch ($torchlib)"

step "xaudit check (sanity suite, saliency, 20 images)"
status=0
"${clean[@]}" "$xaudit" check fixtures/models/digits_cnn_s0.pt --suite sanity --method saliency \
  --config fixtures/digits.toml --data fixtures/data/digits/test --max-images 20 \
  --out-dir "$tmp/reports" || status=$?
echo "wheel-test: xaudit check exit code $status (0 pass, 1 gate failed, 2 error)"
[ "$status" -le 1 ] || fail "xaudit check exited $status"
[ -s "$tmp/reports/report.json" ] || fail "xaudit check wrote no $tmp/reports/report.json"

step "which libtorch: ldd and LD_DEBUG"
torchlib="$(readlink -f "$torchlib")"
build_venv="$(readlink -f "$XAUDIT_VENV")"
# Every library ldd resolves, and every library the loader initialised in a real run, as
# real paths: libtorch must come from the fresh venv and nothing from the build venv.
"${clean[@]}" ldd "$xaudit" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
  | xargs -r readlink -f >"$tmp/ldd.txt" || fail "ldd $xaudit failed"
"${clean[@]}" LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ld" "$xaudit" --version
cat "$tmp"/ld.* | sed -n 's/.*calling init: //p' | xargs -r readlink -f >"$tmp/ld.txt"
for src in ldd ld; do
  for lib in libtorch_cpu.so libtorch.so libc10.so libtorch_cuda.so; do
    grep -qxF "$torchlib/$lib" "$tmp/$src.txt" \
      || fail "$src: $lib does not come from $torchlib: $(cat "$tmp/$src.txt")"
  done
  if grep -F "$build_venv/" "$tmp/$src.txt"; then
    fail "$src: the libraries above come from the build venv $build_venv"
  fi
done
grep -E '/(libtorch|libc10)[^/]*$' "$tmp/ld.txt"
echo "wheel-test: libtorch loaded from $torchlib"
step "passed"
