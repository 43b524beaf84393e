#!/usr/bin/env bash
# F1 of the NNCF int8 variant vs fp32 on SQuAD v1.1 dev (MiniLM-L6 fine-tuned by benchmarks/accuracy_run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
M=runs/accuracy/model
DEV=${DEV:-../shared/data/squad-v1.1/dev-v1.1.json.gz}
TRAIN=${TRAIN:-../shared/data/squad-v1.1/train-v1.1.reconstructed.json.gz}
OUT=${OUT:-runs/openvino-accuracy}
N=${N:-10570}
export HF_HUB_OFFLINE=1
# The README's install (make install) holds onnxruntime-openvino and NNCF.
OV=.venv/bin/python
MAIN=.venv/bin/python
mkdir -p $OUT
[[ -d $OUT/fp32 ]] || $OV -m qa_engine.cli export $M $OUT/fp32 --optimize none --parity-samples 32 2>&1 | tail -3
[[ -d $OUT/int8-ov ]] || $OV -m qa_engine.cli export $M $OUT/int8-ov --optimize none --quantize int8-openvino \
   --calibration-file $TRAIN --calibration-samples 256 --parity-samples 64 2>&1 | grep -v "━" | tail -6
for spec in "fp32 cpu $MAIN" "int8-ov openvino $OV" "fp32 openvino:bf16 $OV" "int8-ov cpu $MAIN"; do
  set -- $spec
  echo "== $1 on $2"; $3 -m qa_engine.cli eval $OUT/$1 --data $DEV --samples $N --device $2 --threads 2 --batch-size 16 2>&1 | tail -12
done
