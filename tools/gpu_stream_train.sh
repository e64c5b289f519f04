#!/usr/bin/env bash
# A GPU lease in one command: benchmark the generator on the GPU, then train while streaming fresh samples.
#
# Runs from a plain copy of the repository (what the device machine receives) with the body bank beside it;
# needs only python3 with torch, numpy, scipy, Pillow, safetensors, imageio and tqdm (no anny, no open3d).
# Everything it keeps goes to --out (at most 8 files, each under 16 MB): bench.json, synth.log, run.json,
# metrics.csv, train.log, summary.txt and the last weights (split in two parts if over 15 MB).
#
#   tools/gpu_stream_train.sh --out "$OUT" --time-limit 540 --bank body-bank.safetensors \
#       --config small --init models/weights/small.safetensors [--backgrounds background-photos] [--negatives 150]
#
# --backgrounds DIR: person-free photos (tools/background_photos.py writes 55, 12 MB) whose crops the streamed
# training samples stand on, 90 % of them; the validation folder keeps procedural backgrounds, comparable
# from run to run.
#
# --negatives N (default 150; 0: none): crops of nobody made there before training by tools/nobody_samples.py
# from 2 N procedural backgrounds, half of them cluttered, with --init's weights (the shipped ones without it):
# each whole background, and every crop that network's framing search looks at. They make 1 sample in 21 of
# the block, as in the model card's stages 9 and 10, so that it keeps refusing empty scenes while it learns
# people (stage 8, without them, took 7 of 20 cluttered backgrounds for a person). At --resolution, 256 at most.
#
# The default config is `small`, the one the CPU's 0.5 s a photo allows: `medium` widened from it takes
# 0.72-0.73 s a photo with the framing search, against 0.55-0.56 s for `small` (docs/gpu-recipe.md).
#
# Steps: stage the package (stage/mould, stage/mould/models, ...; PYTHONPATH=stage), `mould bench synth` for
# --bench-seconds, `mould synth` of --synth-count samples (the rate with files written), a validation folder
# of --val-count samples, then `mould train --data synth@RES --time-limit T` with T the time left less a
# margin: the trainer decays its learning rate over T, validates, writes a checkpoint and stops (a `timeout`
# with SIGTERM, which also makes it save and stop, is the safety net). Peak learning rate: 1e-3 for a new run
# (the shipped model's GPU stage), 3e-4 when continuing from --init. Bad arguments: one line on stderr, exit 2.
set -euo pipefail

usage() { echo "usage: $0 --out DIR --time-limit SECONDS [--bank FILE] [--config small|medium|paper|tiny]" \
    "[--init CKPT] [--backgrounds DIR] [--negatives N] [--lr LR] [--device cuda|cpu] [--resolution N] [--batch-size B] [--gen-batch B] [--workers W]" \
    "[--bench-seconds S] [--synth-count N] [--val-count N] [--seed S] [--python PY]" >&2; exit 2; }

OUT="" LIMIT="" BANK="${MOULD_BODY_BANK:-}" CONFIG=small INIT="" BACKGROUNDS="" LR="" DEVICE=cuda RES=256 BATCH=64 GEN_BATCH=""
WORKERS="" BENCH=30 SYNTH=4000 VAL=200 SEED=0 PYTHON=python3 NEGATIVES=150
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2" ;; --time-limit) LIMIT="$2" ;; --bank) BANK="$2" ;; --config) CONFIG="$2" ;;
        --init) INIT="$2" ;; --backgrounds) BACKGROUNDS="$2" ;; --negatives) NEGATIVES="$2" ;; --lr) LR="$2" ;; --device) DEVICE="$2" ;; --resolution) RES="$2" ;; --batch-size) BATCH="$2" ;;
        --gen-batch) GEN_BATCH="$2" ;; --workers) WORKERS="$2" ;; --bench-seconds) BENCH="$2" ;;
        --synth-count) SYNTH="$2" ;; --val-count) VAL="$2" ;; --seed) SEED="$2" ;; --python) PYTHON="$2" ;;
        *) echo "$0: unknown argument $1" >&2; usage ;;
    esac
    shift 2 || usage
done
[ -n "$OUT" ] && [ -n "$LIMIT" ] || usage
[ -n "$BANK" ] && [ -f "$BANK" ] || { echo "$0: --bank: no body bank file '$BANK' (make one with \`mould synth bank FILE\`)" >&2; exit 2; }
[ -z "$INIT" ] || [ -f "$INIT" ] || { echo "$0: --init: no such checkpoint $INIT" >&2; exit 2; }
[ -z "$BACKGROUNDS" ] || [ -d "$BACKGROUNDS" ] || { echo "$0: --backgrounds: no such folder $BACKGROUNDS" >&2; exit 2; }
[[ "$NEGATIVES" =~ ^[0-9]{1,5}$ ]] || { echo "$0: --negatives: expected a count of backgrounds from 0 to 99999, got '$NEGATIVES'" >&2; exit 2; }
NEGATIVES=$(( 10#$NEGATIVES ))
START=$(date +%s)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
CORES=$(nproc)
WORKERS=${WORKERS:-$(( CORES > 2 ? CORES - 1 : 1 ))}
GEN_BATCH=${GEN_BATCH:-$([ "$DEVICE" = cuda ] && echo 128 || echo 4)}
LR=${LR:-$([ -n "$INIT" ] && echo 3e-4 || echo 1e-3)}
mkdir -p "$OUT"
# Absolute paths: the commands below run in $WORK.
absolute() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
OUT=$(cd "$OUT" && pwd)
[ -z "$INIT" ] || INIT=$(absolute "$INIT")
[ -z "$BACKGROUNDS" ] || BACKGROUNDS=$(absolute "$BACKGROUNDS")

# The package from a plain copy: the top-level folders are subpackages of mould.
STAGE="$WORK/stage"
mkdir -p "$STAGE"
cp -r "$ROOT/mould" "$STAGE/mould"
for part in models recon datasets; do cp -r "$ROOT/$part" "$STAGE/mould/$part"; done
export PYTHONPATH="$STAGE${PYTHONPATH:+:$PYTHONPATH}" MOULD_BODY_BANK=$(absolute "$BANK")
export OMP_WAIT_POLICY=PASSIVE WARP_QUIET=1
cd "$WORK"
MOULD=("$PYTHON" -c 'import sys; from mould.cli import main; sys.exit(main(sys.argv[1:]))')  # the CLI, uninstalled
mould() { "${MOULD[@]}" "$@"; }
left() { echo $(( LIMIT - ($(date +%s) - START) )); }

echo "staged $(du -sh "$STAGE" | cut -f1) of package, bank $(du -h "$MOULD_BODY_BANK" | cut -f1); $WORKERS workers"
# The generator on $DEVICE; should it fail there (its CUDA path was first written without a GPU), the CPU
# workers make the samples instead, so that the block still trains.
GEN_DEVICE=$DEVICE RENDER=device
if ! mould -q bench synth --device "$DEVICE" --seconds "$BENCH" --batch "$GEN_BATCH" --workers "$WORKERS" \
        --resolution "$RES" --json "$OUT/bench.json" 2>&1 | tee "$OUT/synth.log"; then
    echo "the generator failed on $DEVICE: the CPU workers make the samples" | tee -a "$OUT/synth.log" >&2
    GEN_DEVICE=cpu RENDER=workers GEN_BATCH=4
else
    mould -q synth "$WORK/written" --count "$SYNTH" --device "$DEVICE" --batch "$GEN_BATCH" --workers "$WORKERS" \
        --resolution "$RES" 2>&1 | tee -a "$OUT/synth.log" || echo "writing samples failed" >> "$OUT/synth.log"
    rm -rf "$WORK/written"
fi
mould -q synth "$WORK/val" --count "$VAL" --seed 2 --device "$GEN_DEVICE" --batch "$GEN_BATCH" --workers "$WORKERS" \
    --resolution "$RES" >> "$OUT/synth.log" 2>&1 || {
    echo "validation samples failed on $GEN_DEVICE: made by the CPU workers" >> "$OUT/synth.log"
    GEN_DEVICE=cpu RENDER=workers
    mould -q synth "$WORK/val" --count "$VAL" --seed 2 --device cpu --workers "$WORKERS" --resolution "$RES" \
        >> "$OUT/synth.log" 2>&1
}

# Crops of nobody (see --negatives above); should they fail, the block trains on people alone.
DATA="synth@$RES"
if [ "$NEGATIVES" -gt 0 ] && [ "$RES" -gt 256 ]; then
    echo "crops of nobody are at most 256², the framing search's: none at --resolution $RES" | tee -a "$OUT/synth.log" >&2
elif [ "$NEGATIVES" -gt 0 ]; then
    if "$PYTHON" "$ROOT/tools/nobody_samples.py" "$WORK/nobody" --count "$NEGATIVES" --seed $(( SEED + 12 )) \
            --resolution "$RES" ${INIT:+--checkpoint "$INIT"} >> "$OUT/synth.log" 2>&1; then
        DATA="synth@$RES:1,$WORK/nobody:0.05"
    else
        echo "crops of nobody failed: the block trains on people alone" | tee -a "$OUT/synth.log" >&2
    fi
fi

# Train until the time limit, keeping a margin for the copies and the transfer back. The trainer stops itself
# at its own limit, STARTUP seconds short of the budget (its start: imports, CUDA, data workers; its end: the
# last validation and checkpoint); `timeout` is only the safety net, half the margin later. Whatever ends
# the run, the last checkpoint comes back; a run on GPU-rendered samples that fails before its first
# checkpoint is started again, for the time left, on samples the CPU workers make.
MARGIN=$(( LIMIT / 6 > 90 ? 90 : LIMIT / 6 ))
EVERY=$([ "$DEVICE" = cuda ] && echo 500 || echo 50)  # ~1.5 minutes of steps on the H200
train() {  # train RENDER: returns the trainer's exit status
    local budget=$(( $(left) - MARGIN ))
    local startup=$(( budget / 8 > 45 ? 45 : budget / 8 ))
    [ "$(( budget - startup ))" -gt 10 ] || { echo "$0: no time left to train (limit $LIMIT s)" >&2; return 1; }
    rm -rf "$WORK/run"
    timeout --preserve-status --signal=TERM --kill-after=30 "$(( budget + MARGIN / 2 ))" "${MOULD[@]}" \
        -q train --config "$CONFIG" \
        --data "$DATA" --stream-render "$1" --val "$WORK/val" --val-meshes 0 --out "$WORK/run" \
        --device "$DEVICE" --batch-size "$BATCH" --workers "$WORKERS" --steps 200000 \
        --time-limit "$(( budget - startup ))" --lr "$LR" --warmup-steps 200 --ckpt-every "$EVERY" \
        --val-every "$EVERY" --seed "$SEED" ${INIT:+--init "$INIT"} ${BACKGROUNDS:+--backgrounds "$BACKGROUNDS"} \
        >> "$WORK/train.out" 2>&1
}
set +e
train "$RENDER"
STATUS=$?
if [ ! -e "$WORK/run/checkpoints/latest" ] && [ "$RENDER" = device ]; then
    echo "training on GPU-rendered samples failed (exit $STATUS): again on the CPU workers' samples" | tee -a "$OUT/synth.log" >&2
    train workers
    STATUS=$?
fi
set -e
tail -n 5 "$WORK/train.out"
if [ ! -e "$WORK/run/checkpoints/latest" ]; then
    echo "$0: training failed (exit $STATUS) before its first checkpoint" >&2
    cp "$WORK/train.out" "$OUT/train.log"
    exit 1
fi
case $STATUS in 0|130) ;; *) echo "$0: training ended with exit status $STATUS; its last checkpoint comes back" >&2 ;; esac

# What comes back: figures and the last weights.
cp "$WORK/run/run.json" "$WORK/run/metrics.csv" "$OUT/"
cp "$WORK/run/train.log" "$OUT/train.log"
WEIGHTS="$WORK/run/checkpoints/$(cat "$WORK/run/checkpoints/latest").safetensors"
if [ "$(stat -c %s "$WEIGHTS")" -gt 15000000 ]; then
    split -b 15000000 -d -a 1 "$WEIGHTS" "$OUT/$(basename "$WEIGHTS").part"
else
    cp "$WEIGHTS" "$OUT/"
fi
"$PYTHON" - "$OUT/metrics.csv" "$OUT/bench.json" > "$OUT/summary.txt" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
waits = [float(r["value"]) for r in rows if r["tag"] == "train/data_wait_fraction"]
speed = [float(r["value"]) for r in rows if r["tag"] == "train/steps_per_s"]
val = {r["tag"]: r["value"] for r in rows if r["tag"].startswith("val/")}
try:
    bench = json.load(open(sys.argv[2]))
    print(f"generator: {bench['samples_per_second']} samples/s on {bench['machine']} (batch {bench['batch']}, "
          f"{bench['workers']} workers)")
except (OSError, ValueError, KeyError):
    print("generator: its benchmark failed (synth.log)")
if waits:
    print(f"training: {len(waits)} log intervals, waiting for data {sum(waits) / len(waits):.1%} of the time, "
          f"{sum(w > 0.05 for w in waits) / len(waits):.0%} of intervals over 5 %; {sum(speed) / len(speed):.2f} steps/s")
print("last validation:", json.dumps(val))
PY
cat "$OUT/summary.txt"
rm -rf "$WORK"
