#!/usr/bin/env bash
# Rebuild the bundled default smile model (tinysmile/models/smile_default/) from
# SMILEsmileD: import into a store, train embedded3, quantize to full int8.
# Needs the `train` extra (tensorflow-cpu). Scratch files go to runs/default/.
set -euo pipefail
cd "$(dirname "$0")/.."
TS=${TINYSMILE:-.venv/bin/tinysmile}
DATA=${TINYSMILE_SMILESMILED:-../shared/datasets/smilesmiled}
WORK=${WORK:-runs/default}
OUT=${OUT:-tinysmile/models/smile_default}

"$TS" data import smilesmiled "$DATA" --store "$WORK/store"
# Wall-clock time of this step is the training time stated in the model card.
"$TS" train --arch embedded3 --data "$WORK/store" --out "$WORK/run" --epochs 30 --seed 0
"$TS" quantize "$WORK/run" --out "$OUT" --name smile_default \
  --reproduce "bash scripts/train_default.sh"
