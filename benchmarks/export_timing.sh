#!/usr/bin/env bash
# Issue 19, part 6: wall clock of a SpanBERT-base export with a SQuAD file on this machine.
# The SpanBERT-base architecture with random weights (benchmarks/export_spanbert_base.py
# builds it offline), parity and calibration on SQuAD v1.1 *train* questions, the
# defaults otherwise (--optimize O2, 1,000 parity questions at most, 384/128 windows).
# Every log line is stamped with the time, so the log gives the phase breakdown;
# /usr/bin/time -v gives the wall clock; the load average is printed before and after.
#
#   bash benchmarks/export_timing.sh                 # int8-dynamic, then auto
#   MODES="int8-dynamic" bash benchmarks/export_timing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
DATA=${DATA:-/work/shared/data/squad-v1.1}
TRAIN=$DATA/train-v1.1.reconstructed.json.gz
RUN=${RUN:-/tmp/qa-engine-export-timing}
OUT=${OUT:-benchmarks/results/export}
MODES=${MODES:-int8-dynamic auto}
export HF_HUB_OFFLINE=1
mkdir -p "$RUN" "$OUT"
CHECKPOINT=$RUN/spanbert-base/checkpoint
if [[ ! -f $CHECKPOINT/model.safetensors ]]; then
  $PY -c "import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path; \
from export_spanbert_base import build_checkpoint; build_checkpoint(Path('$CHECKPOINT'))"
fi
stamp() { while IFS= read -r line; do printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$line"; done; }
for mode in $MODES; do
  log=$OUT/export-$mode.log
  {
    echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "# load average before: $(cat /proc/loadavg)"
    echo "# qa-engine export $CHECKPOINT $RUN/$mode --quantize $mode --calibration-file $TRAIN"
  } > "$log"
  rm -rf "${RUN:?}/$mode"
  /usr/bin/time -v $PY -m qa_engine.cli export "$CHECKPOINT" "$RUN/$mode" --quantize "$mode" \
    --calibration-file "$TRAIN" 2>&1 | stamp >> "$log"
  echo "# load average after: $(cat /proc/loadavg)" >> "$log"
  cp "$RUN/$mode/qa_manifest.json" "$OUT/manifest-$mode.json"
  grep -E "Elapsed|Maximum resident|load average" "$log"
done
