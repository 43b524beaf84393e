#!/usr/bin/env bash
# The measurements behind README "Tune" (issue 19, parts 2 and 4), into benchmarks/results/tune/:
#   1. qa-engine tune on an export in plain onnxruntime (.venv-plain, `make test-plain`) and
#      in the README's install, the OpenVINO build (.venv, `make install`), with SQuAD *train*
#      questions;
#   2. batch-1 p50/p95 on the OpenVINO provider with and without bucket warm-up
#      (benchmarks/bucket_warmup_bench.py) on an unfused export (OpenVINO runs all of it).
# Plans go to the results dir (--out), never into the export itself.
#
#   benchmarks/tune_run.sh EXPORT_DIR UNFUSED_EXPORT_DIR [BUDGET_S]
set -euo pipefail
EXPORT=${1:?export dir (e.g. runs/demo/onnx-fp32-O2)}
UNFUSED=${2:?unfused export dir for the OpenVINO bench (--optimize none)}
BUDGET=${3:-120}
HERE=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-$HERE}
TRAIN=${TRAIN:-/work/shared/data/squad-v1.1/train-v1.1.reconstructed.json.gz}
OUT=${OUT:-$HERE/benchmarks/results/tune}
mkdir -p "$OUT"
export PYTHONPATH=$HERE HF_HUB_OFFLINE=1

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
  echo "cores: $(nproc)"
  echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx512f|avx512_vnni|avx512_bf16|amx_bf16|amx_int8|avx_vnni)$' | xargs)"
  echo "export: $EXPORT  unfused: $UNFUSED  budget: $BUDGET s"
  echo "loadavg before: $(cat /proc/loadavg)"
} > "$OUT/machine.txt"

# name:venv:export. OpenVINO also gets the unfused export: a fused (O1-O4) graph holds
# onnxruntime-only operators, so OpenVINO runs only part of it.
for run in "cpu:.venv-plain:$EXPORT" "openvino:.venv:$EXPORT" \
  "openvino-unfused:.venv:$UNFUSED"; do
  IFS=: read -r name venv export <<< "$run"
  python=$MAIN/$venv/bin/python
  {
    echo "# loadavg before: $(cat /proc/loadavg)"
    echo "# $venv/bin/python -m qa_engine.cli tune $export --data $TRAIN --budget $BUDGET"
    "$python" -m qa_engine.cli tune "$export" --data "$TRAIN" --budget "$BUDGET" \
      --out "$OUT/plan-$name.json" 2>&1 | grep -v -e 'UserWarning' -e 'warnings.warn' -e '^  warm, timed'
    echo "# loadavg after: $(cat /proc/loadavg)"
  } > "$OUT/tune-$name.log" 2>&1
done

{
  echo "# loadavg before: $(cat /proc/loadavg)"
  "$MAIN/.venv/bin/python" "$HERE/benchmarks/bucket_warmup_bench.py" "$UNFUSED" \
    --data "$TRAIN" --device openvino:f32 --threads 2 --questions "${QUESTIONS:-200}" \
    --out "$OUT/bucket-warmup-openvino.json" 2>&1 | grep -v -e 'Warning' -e 'warnings.warn'
  echo "# loadavg after: $(cat /proc/loadavg)"
} > "$OUT/bucket-warmup-openvino.log" 2>&1
echo "loadavg after: $(cat /proc/loadavg)" >> "$OUT/machine.txt"
