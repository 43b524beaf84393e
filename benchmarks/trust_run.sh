#!/usr/bin/env bash
# Issue 14 on real weights: every variant exported with its self-check reference
# (calibration and parity on SQuAD v1.1 *train* questions), then each provider and
# precision this machine offers: the self-check verdict next to the dev F1, and
# predict(batch_size=32) against one question at a time.
#
#   bash benchmarks/trust_run.sh            # needs runs/accuracy/model (accuracy_run.sh)
#   EVAL_SAMPLES=10570 bash benchmarks/trust_run.sh   # the full dev
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OV_PY=${OV_PY:-.venv/bin/python}  # the README's install holds the OpenVINO build
DATA=${DATA:-../shared/data/squad-v1.1}
TRAIN=$DATA/train-v1.1.reconstructed.json.gz
DEV=$DATA/dev-v1.1.json.gz
MODEL=${MODEL:-runs/accuracy/model}
RUN=${RUN:-runs/trust}
OUT=${OUT:-benchmarks/results/trust}
EVAL_SAMPLES=${EVAL_SAMPLES:-2000}
INVARIANCE_SAMPLES=${INVARIANCE_SAMPLES:-300}
export HF_HUB_OFFLINE=1
mkdir -p "$RUN" "$OUT"
CAL="--calibration-file $TRAIN --calibration-samples 256 --parity-samples ${PARITY_SAMPLES:-1000}"
exp() { local name=$1; shift; [[ -d $RUN/$name ]] || $PY -m qa_engine.cli export "$MODEL" "$RUN/$name" "$@" 2>&1 | tee "$OUT/export-$name.log"; }
exp fp32-none --optimize none $CAL
exp fp32-o2 --optimize O2 $CAL
exp int8-dynamic --optimize O3 --quantize int8-dynamic $CAL --max-f1-drop 0.5
# --force: its F1 evidence is over budget (the export refuses it otherwise);
# the runtime then loads it with a warning that names --force.
exp int8-static --optimize O3 --quantize int8-static $CAL --force
if [[ -x $OV_PY ]] && [[ ! -d $RUN/int8-openvino ]]; then
  $OV_PY -m qa_engine.cli export "$MODEL" "$RUN/int8-openvino" --optimize none --quantize int8-openvino $CAL 2>&1 | tee "$OUT/export-int8-openvino.log"
fi
for v in fp32-none fp32-o2 int8-dynamic int8-static int8-openvino; do
  [[ -f $RUN/$v/qa_manifest.json ]] && cp "$RUN/$v/qa_manifest.json" "$OUT/manifest-$v.json"
done
# provider/precision rows: python, export, device
rows=(
  "$PY fp32-none cpu" "$PY fp32-o2 cpu" "$PY int8-dynamic cpu" "$PY int8-static cpu"
  "$OV_PY fp32-none openvino:f32" "$OV_PY fp32-none openvino:bf16" "$OV_PY fp32-none openvino"
  "$OV_PY fp32-o2 openvino:bf16" "$OV_PY int8-openvino openvino:bf16" "$OV_PY int8-openvino openvino:f32"
)
for row in "${rows[@]}"; do
  read -r py variant device <<< "$row"
  [[ -x $py && -d $RUN/$variant ]] || continue
  tag="$variant@${device/:/-}"
  [[ -f $OUT/check-$tag.json ]] || $py benchmarks/trust_check.py "$RUN/$variant" --device "$device" \
      --data "$DEV" --samples "$EVAL_SAMPLES" --invariance-samples "$INVARIANCE_SAMPLES" \
      > "$OUT/check-$tag.json" 2> "$OUT/check-$tag.log" || true
done
$PY benchmarks/trust_summary.py "$OUT"
