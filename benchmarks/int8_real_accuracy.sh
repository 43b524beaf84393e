#!/usr/bin/env bash
# int8 that batches (issue 19, part 3) on a real SQuAD fine-tune: MiniLM-L6-H384 fine-tuned on
# SQuAD v1.1 train questions (benchmarks/accuracy_run.sh's finetune stage), exported fp32 O2,
# int8-nncf (static, batch-invariant) and int8-dynamic, each calibrated and verified on TRAIN
# questions, then scored paired on the full dev (10,570 questions; int8_accuracy.py).
#
#   MAX_TRAIN_SAMPLES=16000 STAGES=finetune bash benchmarks/accuracy_run.sh   # the model (~25 min quiet)
#   bash benchmarks/int8_real_accuracy.sh                                     # exports + full dev
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/squad-v1.1}
TRAIN=$DATA/train-v1.1.reconstructed.json.gz
DEV=$DATA/dev-v1.1.json.gz
MODEL=${MODEL:-runs/accuracy/model}
RUN=${RUN:-runs/accuracy/real-int8}
OUT=${OUT:-benchmarks/results/int8/real-minilm}
SAMPLES_ARG=${SAMPLES:+--samples $SAMPLES}
export HF_HUB_OFFLINE=1
mkdir -p "$RUN" "$OUT"
{ grep -m1 "model name" /proc/cpuinfo; grep -o -w 'amx_tile\|avx512_vnni\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; nproc; } > "$OUT/machine.txt"
cp "$MODEL/qa_config.json" "$OUT/finetune_qa_config.json"
CAL="--calibration-file $TRAIN --calibration-samples 256 --parity-samples 1000"
for v in "fp32-O2:O2:none" "int8-nncf:none:int8-nncf" "int8-dynamic:O2:int8-dynamic"; do
  IFS=: read -r name opt q <<< "$v"
  if [[ ! -f $RUN/$name/qa_manifest.json ]]; then
    /usr/bin/time -f "%e s wall, %U s user" $PY -m qa_engine.cli export "$MODEL" "$RUN/$name" \
      --optimize "$opt" --quantize "$q" $CAL --max-f1-drop 1.0 --force 2>&1 | tee "$OUT/export-$name.log"
  fi
  cp "$RUN/$name/qa_manifest.json" "$OUT/manifest-$name.json"
done
$PY benchmarks/int8_accuracy.py fp32-O2="$RUN/fp32-O2" int8-nncf="$RUN/int8-nncf" \
  int8-dynamic="$RUN/int8-dynamic" --data "$DEV" $SAMPLES_ARG --out "$OUT/full-dev.json" \
  --chunk 1000 --threads 2 --batch-size 32 2>&1 | tee "$OUT/full-dev.log"
