#!/usr/bin/env bash
# GPU checks: everything that needs onnxruntime-gpu and a CUDA device, in one run.
#
#   pip install torch "qa-engine[gpu,bench,dev]"     # a CUDA torch and onnxruntime-gpu
#   bash benchmarks/gpu_check.sh [OUT_DIR]            # ~5 min on one H200
#
# 1. which providers onnxruntime really offers (a CUDA build that cannot load its libraries
#    offers CUDA and falls back to CPU: the tests below catch that);
# 2. the runtime and export tests with CUDA present: the `gpu` tests (CUDA IO binding, an
#    fp16 O4 export verified on the GPU) and the fast ones, which then also see
#    device="auto" pick CUDA (TESTS="tests/" for the whole fast suite);
# 3. the speed suite on the GPU: SpanBERT-base architecture exported at fp32 O3 and fp16
#    O4 with --device cuda, against the transformers pipeline in fp32 and fp16 autocast
#    and Optimum's pipeline on the same file, seq 128 and 384, batch 1 and 32;
# 4. with EXPORT_DIR=<an fp16 export of a fine-tuned model> and DEV_FILE=<SQuAD dev>,
#    official EM/F1 of that export on the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
status=0

echo "== providers" | tee "$OUT/providers.txt"
$PY -c "import onnxruntime as o; print(o.__version__, o.get_device(), o.get_available_providers())" \
  2>&1 | tee -a "$OUT/providers.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$OUT/providers.txt"

echo "== tests (gpu, and the fast ones with CUDA present)"
# shellcheck disable=SC2086
timeout "${TEST_TIMEOUT:-300}" $PY -m pytest -q -p no:cacheprovider -m "gpu or not slow" \
  ${TESTS:-tests/test_engine.py tests/test_export.py} \
  > "$OUT/pytest.log" 2>&1 || status=1
tail -15 "$OUT/pytest.log"

echo "== speed suite on cuda"
$PY benchmarks/speed_suite.py --device cuda --seq-lengths 128,384 --batch-sizes 1,32 \
  --memory off --no-progress --out "$OUT/speed" 2>&1 | tee "$OUT/speed.log" | grep -v "^\[speed-suite\]   "
[[ ${PIPESTATUS[0]} == 0 ]] || status=1

if [[ -n ${EXPORT_DIR:-} && -n ${DEV_FILE:-} ]]; then
  echo "== official EM/F1 of $EXPORT_DIR on cuda"
  $PY -m qa_engine.cli eval "$EXPORT_DIR" --data "$DEV_FILE" --device cuda --batch-size 64 \
    > "$OUT/eval-cuda.json" 2> "$OUT/eval-cuda.log" || status=1
  cat "$OUT/eval-cuda.json"
fi
exit $status
