#!/usr/bin/env bash
# Throughput of every attribution method on the bundled fixtures (make bench).
# Prints images per second; the numbers depend on the machine, so nothing here is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
X=target/release/xaudit
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { # name model data config extra...
  local name=$1 model=$2 data=$3 cfg=$4; shift 4
  local n start end
  start=$(date +%s.%N)
  n=$($X explain "$model" "$data" --config "$cfg" --out "$out/$name" --device "${BENCH_DEVICE:-auto}" "$@" 2>/dev/null | wc -l)
  end=$(date +%s.%N)
  awk -v n="$n" -v s="$start" -v e="$end" -v name="$name" 'BEGIN { printf "%-34s %5d images %8.2f s %9.1f images/s\n", name, n, e - s, n / (e - s) }'
}
echo "device: ${BENCH_DEVICE:-auto}, threads: $(nproc)"
D=fixtures/data/digits/test
F=fixtures/data/faces
for m in saliency gradient-x-input integrated-gradients smoothgrad grad-cam occlusion rise random edge; do
  run "digits $m" fixtures/models/digits_cnn_s0.pt $D fixtures/digits.toml --method $m --batch-size 32
done
for m in saliency integrated-gradients smoothgrad grad-cam; do
  run "faces $m" fixtures/models/onet_face.pt $F fixtures/faces.toml --method $m --batch-size 32
done
