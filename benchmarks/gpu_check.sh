#!/usr/bin/env bash
# GPU checks (issue 18): everything that needs onnxruntime-gpu and a CUDA device, in one run
# of under 8 minutes on one H200. Every step has a time limit inside a global budget
# (BUDGET_S, default 470 s), in priority order; a step that fails or runs out is recorded
# in steps.txt and the next one still runs.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]          # default benchmarks/results/gpu
#
# Environment:
#   QA_SITE    unpacked onnxruntime-gpu + missing packages (benchmarks/device_carry.sh
#              restore ... --wheels); put first on PYTHONPATH when it exists
#              (default /root/qa-site)
#   MODEL_DIR  a fine-tuned PyTorch checkpoint (e.g. the MiniLM of runs/accuracy/model):
#              exported here at fp32 (O2) and fp16 (O4) on CUDA for full-dev F1 and q/s
#   DEV_FILE   SQuAD v1.1 dev (default ../shared/data/squad-v1.1/dev-v1.1.json.gz, or
#              $QA_DATA/dev-v1.1.json.gz)
#
# Steps (results under OUT_DIR):
#  1. versions.txt: GPU, driver, CUDA, onnxruntime and its providers, torch, TensorRT;
#  2. pytest.log: the gpu tests (CUDA IO binding, CUDA graphs replaying the plain answers,
#     an O4 fp16 export verified on CUDA, TensorRT where present) and the fast runtime
#     tests with CUDA present;
#  3. speed/: the speed suite on CUDA, SpanBERT-base architecture at fp32 O3 and fp16 O4,
#     seq 128 and 384, batch 1 and 32, each qa-engine variant with and without CUDA
#     graphs, against the transformers pipeline (fp32, fp16 autocast) and Optimum, plus
#     the host share (ms per question of tokenize + pad + decode);
#  4. eval-*.json: full-dev EM/F1 and q/s of MODEL_DIR's fp32 and fp16 exports on CUDA
#     (fp16 with and without CUDA graphs; target: fp16 F1 = fp32 +-0.1 at >= 8,000 q/s);
#  5. peers.json: PyTorch eager fp16, torch.compile(mode="reduce-overhead") fp16 and one
#     CUDA graph of the forward (the floor), model forward only, seq 384, batch 1 and 32;
#  6. serve/: qa-engine serve on CUDA (graphs captured at warm-up) under 1, 32 and 128
#     closed-loop clients against the offline engine (target: 128 clients >= 80%);
#  7. tensorrt.json: device="tensorrt" on the fp16 model's fp32 export, where present.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/gpu}
PY=${PY:-python3}
QA_SITE=${QA_SITE:-/root/qa-site}
BUDGET_S=${BUDGET_S:-470}
DEV_FILE=${DEV_FILE:-}
for candidate in ../shared/data/squad-v1.1/dev-v1.1.json.gz "${QA_DATA:-.carry/data}/dev-v1.1.json.gz"; do
  [[ -z $DEV_FILE && -f $candidate ]] && DEV_FILE=$candidate
done
mkdir -p "$OUT"
[[ -d $QA_SITE ]] && export PYTHONPATH="$QA_SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH=${PYTHONPATH:-$PWD}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
T0=$(date +%s)
status=0
: > "$OUT/steps.txt"

step() {  # step NAME LIMIT_S COMMAND...: run within min(LIMIT_S, what is left of the budget)
  local name=$1 limit=$2 left started rc
  shift 2
  left=$((BUDGET_S - ($(date +%s) - T0)))
  ((left < limit)) && limit=$left
  if ((limit < 15)); then
    echo "$name: skipped (budget spent)" | tee -a "$OUT/steps.txt"
    return
  fi
  echo "== $name (limit ${limit}s)"
  started=$(date +%s)
  timeout "$limit" "$@"
  rc=$?
  echo "$name: rc=$rc in $(($(date +%s) - started)) s" | tee -a "$OUT/steps.txt"
  ((rc == 0)) || status=1
}

versions() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $PY - <<'EOF'
import importlib.metadata as m
import onnxruntime as ort
print("onnxruntime", ort.__version__, ort.get_device(), ort.get_available_providers())
for name in ("onnxruntime-gpu", "torch", "transformers", "optimum", "optimum-onnx", "tokenizers",
             "tensorrt", "tensorrt-cu12", "tensorrt-cu13", "nvidia-cudnn-cu13"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, "absent")
import torch
print("torch cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")
EOF
}
versions > "$OUT/versions.txt" 2>&1
cat "$OUT/versions.txt"

step tests 100 $PY -m pytest -q -p no:cacheprovider -m "gpu or not slow" \
  tests/test_engine.py tests/test_graphs.py tests/test_tensorrt.py tests/test_pipeline.py \
  tests/test_export.py::test_fp16_export_on_cuda_runs_on_the_gpu_and_agrees_with_cpu \
  > "$OUT/pytest.log" 2>&1
tail -15 "$OUT/pytest.log"

step speed 200 $PY benchmarks/speed_suite.py --device cuda --cuda-graphs --seq-lengths 128,384 \
  --batch-sizes 1,32 --questions 64 --latency-runs 30 --memory off --no-progress \
  --out "$OUT/speed" > "$OUT/speed.log" 2>&1
grep -v "^\[speed-suite\]   " "$OUT/speed.log" | tail -40

if [[ -n ${MODEL_DIR:-} && -n $DEV_FILE ]]; then
  exports=${EXPORTS:-/root/qa-exports}
  step export-fp16 50 $PY -m qa_engine.cli export "$MODEL_DIR" "$exports/fp16-O4" --device cuda \
    --optimize O4 --parity-samples 16 --force > "$OUT/export-fp16.log" 2>&1
  step eval-fp16-graphs 35 $PY benchmarks/gpu_eval.py "$exports/fp16-O4" --data "$DEV_FILE" \
    --cuda-graphs --batch-size 64 --out "$OUT/eval-fp16-graphs.json" > /dev/null 2> "$OUT/eval.log"
  step export-fp32 45 $PY -m qa_engine.cli export "$MODEL_DIR" "$exports/fp32-O2" --device cuda \
    --optimize O2 --parity-samples 16 --force > "$OUT/export-fp32.log" 2>&1
  step eval-fp32 30 $PY benchmarks/gpu_eval.py "$exports/fp32-O2" --data "$DEV_FILE" \
    --batch-size 64 --out "$OUT/eval-fp32.json" > /dev/null 2>> "$OUT/eval.log"
  step eval-fp16 30 $PY benchmarks/gpu_eval.py "$exports/fp16-O4" --data "$DEV_FILE" \
    --batch-size 64 --out "$OUT/eval-fp16.json" > /dev/null 2>> "$OUT/eval.log"
  $PY - "$OUT" <<'EOF'
import json, sys, pathlib
for name in ("eval-fp32", "eval-fp16", "eval-fp16-graphs"):
    path = pathlib.Path(sys.argv[1]) / f"{name}.json"
    if path.is_file():
        r = json.loads(path.read_text())
        print(f"{name}: F1 {r['metrics']['f1']:.2f} EM {r['metrics']['exact']:.2f} "
              f"{r['questions_per_second']:.0f} q/s, host {r['stages']['host_ms_per_question']:.3f} ms/q")
EOF
else
  echo "eval: skipped (set MODEL_DIR and DEV_FILE)" | tee -a "$OUT/steps.txt"
fi

spanbert=$(ls -d "$HOME"/.cache/qa-engine/speed-suite/spanbert-base-*/pytorch 2>/dev/null | head -1)
if [[ -n $spanbert ]]; then
  step peers 80 $PY benchmarks/gpu_peers.py --model "$spanbert" --seq 384 --batch-sizes 1,32 \
    --out "$OUT/peers.json" > "$OUT/peers.log" 2>&1
  tail -8 "$OUT/peers.log"
fi

serve_export=${exports:-}/fp16-O4
[[ -f $serve_export/qa_manifest.json ]] || serve_export=$(ls -d "$HOME"/.cache/qa-engine/speed-suite/spanbert-base-*/fp16-O4-cuda 2>/dev/null | head -1)
if [[ -n $serve_export && -n $DEV_FILE ]]; then
  step serve 90 $PY benchmarks/serve_bench.py --export "$serve_export" --device cuda \
    --data "$DEV_FILE" --samples 1000 --requests 1500 --concurrency 1,32,128 --soak 0 \
    --burst 500 --burst-limit 256 --latency-runs 100 --no-peer --out "$OUT/serve" \
    > "$OUT/serve.log" 2>&1
  tail -12 "$OUT/serve.log"
fi

trt_export=$(ls -d "$HOME"/.cache/qa-engine/speed-suite/spanbert-base-*/fp32-O3-cuda 2>/dev/null | head -1)
if $PY -c "import onnxruntime as o, sys; sys.exit('TensorrtExecutionProvider' not in o.get_available_providers())" 2>/dev/null \
  && [[ -n $trt_export && -n $DEV_FILE ]]; then
  step tensorrt 120 $PY benchmarks/gpu_eval.py "$trt_export" --data "$DEV_FILE" \
    --device tensorrt --batch-size 32 --out "$OUT/tensorrt.json" > "$OUT/tensorrt.log" 2>&1
  tail -5 "$OUT/tensorrt.log"
else
  echo "tensorrt: provider absent from this onnxruntime build (or no export): not run" \
    | tee -a "$OUT/steps.txt"
fi
echo "total $(($(date +%s) - T0)) s; steps:"
cat "$OUT/steps.txt"
exit $status
