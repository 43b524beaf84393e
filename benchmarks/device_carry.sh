#!/usr/bin/env bash
# Carry big files to a device machine that has no network, in parts over consecutive calls.
#
# One device call carries at most 64 MiB (the working tree included), so a bundle (the
# onnxruntime-gpu wheel, the Python packages the device image lacks, a fine-tuned
# checkpoint) is packed here into parts of PART_MIB under .carry/ (git-ignored through
# .git/info/exclude), each call carries one part and moves it out of the tree into
# $CARRY_DIR on the device (outside the repo, kept while the machine stays warm: the next
# call must come within its idle release, ~30 s), and the last call restores and installs.
#
# Here (a machine with pip and network):
#   bash benchmarks/device_carry.sh wheels             # onnxruntime-gpu + missing deps -> .carry/download/
#   bash benchmarks/device_carry.sh pack ortgpu .carry/download
#   bash benchmarks/device_carry.sh pack model runs/accuracy/model   # a fine-tuned checkpoint
#   bash benchmarks/device_carry.sh calls              # the carry list of each device call
# On the device, in each call (its command):
#   bash benchmarks/device_carry.sh receive            # .carry/parts/* -> $CARRY_DIR
# and in the last call, before the checks:
#   bash benchmarks/device_carry.sh restore ortgpu /root/qa-site --wheels   # unzip wheels
#   bash benchmarks/device_carry.sh restore model /root/qa-model
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.carry
CARRY_DIR=${CARRY_DIR:-/root/qa-carry}
PART_MIB=${PART_MIB:-56}
# onnxruntime-gpu and what the device image lacks or has at versions that do not fit
# (transformers 4.x for optimum-onnx, which pins tokenizers and huggingface_hub below
# the image's). Versions are the ones the project's venv runs with.
ORT_GPU=${ORT_GPU-onnxruntime-gpu==1.31.*}
DEPS=(optimum optimum-onnx transformers tokenizers huggingface_hub fastapi starlette pydantic
  pydantic_core annotated-types typing-inspection uvicorn)
PY=${PY:-python3}

pinned() {  # NAME==VERSION of a package as installed here
  "$PY" -c "import importlib.metadata as m, sys; print(f'{sys.argv[1]}=={m.version(sys.argv[1])}')" "$1"
}

case ${1:-} in
  wheels)
    mkdir -p "$CARRY/download"
    platform=(--only-binary=:all: --python-version 3.12 --implementation cp
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
    if [[ -n $ORT_GPU ]]; then  # ORT_GPU= (empty) fetches only the other packages
      "$PY" -m pip download --no-deps "${platform[@]}" -d "$CARRY/download" "$ORT_GPU"
    fi
    for name in "${DEPS[@]}"; do
      "$PY" -m pip download --no-deps "${platform[@]}" -d "$CARRY/download" "$(pinned "$name")"
    done
    ls -la "$CARRY/download"
    ;;
  pack)  # pack NAME DIR: DIR's contents tarred (wheels and weights hardly compress), split
    name=$2 dir=$3
    mkdir -p "$CARRY/parts"
    rm -f "$CARRY/parts/$name".part*
    tar -C "$dir" -cf - . | split -b "${PART_MIB}M" -d -a 2 - "$CARRY/parts/$name.part"
    (cd "$CARRY/parts" && cat "$name".part* | sha256sum | cut -d' ' -f1) > "$CARRY/$name.sha256"
    ls -la "$CARRY/parts/$name".part*
    ;;
  calls)  # the `carry` argument of each device call, in order
    for part in "$CARRY"/parts/*.part*; do
      printf '["%s", "%s"]\n' "$part" "$CARRY/$(basename "${part%.part*}").sha256"
    done
    ;;
  receive)  # on the device: move this call's parts out of the tree, report what is there
    mkdir -p "$CARRY_DIR"
    if compgen -G "$CARRY/parts/*" > /dev/null; then mv "$CARRY"/parts/* "$CARRY_DIR"/; fi
    cp "$CARRY"/*.sha256 "$CARRY_DIR"/ 2>/dev/null || true
    ls -la "$CARRY_DIR"
    ;;
  restore)  # restore NAME DEST [--wheels]: join, check the digest, untar (and unzip wheels)
    name=$2 dest=$3
    got=$(cat "$CARRY_DIR/$name".part* | sha256sum | cut -d' ' -f1)
    want=$(cat "$CARRY_DIR/$name.sha256")
    if [[ $got != "$want" ]]; then
      echo "device_carry: $name is incomplete or corrupt (sha256 $got, expected $want);" \
        "parts here: $(ls "$CARRY_DIR" | grep "^$name.part" | tr '\n' ' ')" >&2
      exit 1
    fi
    mkdir -p "$dest"
    cat "$CARRY_DIR/$name".part* | tar -xf - -C "$dest"
    if [[ ${4:-} == --wheels ]]; then  # a wheel is a zip: unpacked, it is importable
      find "$dest" -name '*.whl' -print0 | while IFS= read -r -d '' wheel; do
        "$PY" -m zipfile -e "$wheel" "$dest"
      done
      echo "export PYTHONPATH=$dest:\$PYTHONPATH"
    fi
    ;;
  *)
    sed -n '2,22p' "$0"
    exit 2
    ;;
esac
