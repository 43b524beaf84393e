#!/usr/bin/env bash
# Issue 19 part 1: what the README's install ([cpu] = onnxruntime-openvino on x86-64 Linux)
# gives with device="auto", side by side in one `qa-engine bench` run with the peers a user
# would pick: the transformers pipeline fp32 and under bf16 autocast, plain OpenVINO; and the
# same exports pinned to each provider (DIR@DEVICE) to show what auto chose between.
#
#   bash benchmarks/cpu_default_bench.sh SPANBERT_DIR [OUT]
# SPANBERT_DIR holds checkpoint/ (benchmarks/export_spanbert_base.py's random-weight
# SpanBERT-base), fp32/ (--optimize none), int8-openvino/ and int8-dynamic/ exports.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:?dir with checkpoint/, fp32/, int8-openvino/, int8-dynamic/}
OUT=${2:-benchmarks/results/cpu-default/spanbert-base}
PY=${PY:-.venv/bin/python}
DEV=${DEV:-../shared/data/squad-v1.1/dev-v1.1.json.gz}
mkdir -p "$OUT"
{
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
  echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx512_vnni|avx512_bf16|amx_bf16|amx_int8)$' | xargs)"
  echo "onnxruntime: $($PY -c 'import onnxruntime as o; print(o.__version__, o.get_available_providers())')"
  echo "loadavg before: $(cat /proc/loadavg)"
} > "$OUT/machine.txt"
models=(--model "$D/checkpoint")
for e in int8-openvino int8-dynamic fp32; do [[ -d $D/$e ]] && models+=(--model "$D/$e"); done
[[ -d $D/int8-openvino ]] && models+=(--model "$D/int8-openvino@cpu")
[[ -d $D/fp32 ]] && models+=(--model "$D/fp32@cpu")
HF_HUB_OFFLINE=1 $PY -m qa_engine.cli bench "${models[@]}" --device auto \
  --peers transformers,openvino --bf16 on --data "$DEV" --samples "${SAMPLES:-64}" \
  --batch-sizes 1,32 --latency-runs "${LATENCY_RUNS:-16}" --warmup 3 --threads 2 \
  --memory off --no-progress --out "$OUT" 2>&1 | grep -v -i warn | tee "$OUT/bench.log"
echo "loadavg after: $(cat /proc/loadavg)" >> "$OUT/machine.txt"
