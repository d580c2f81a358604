#!/usr/bin/env bash
# Re-measure the bundled default's int8 metrics under today's preprocessing (the model is
# unchanged): after a change in the serving path such as the integer area resize, which
# moved 5.7 % of the 64 -> 48 pixels of a SMILEsmileD crop by one level. Rewrites
# tinysmile/models/smile_default/bundle.json and MODEL_CARD.md; float figures stay as
# trained (they need the training run). About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${TINYSMILE_SMILESMILED:-../shared/datasets/smilesmiled}
WORK=${WORK:-runs/remeasure}
OUT=${OUT:-tinysmile/models/smile_default}
.venv/bin/tinysmile data import smilesmiled "$DATA" --store "$WORK/store" > /dev/null
"$PY" - "$OUT" "$WORK/store" <<'PY'
import json, sys
from tinysmile.train.quantize import remeasure_int8
note = ("int8 and degraded metrics re-measured with the integer area resize of the crop "
        "(tinysmile.data.pixels.resize_area, in place of OpenCV's INTER_AREA) by "
        "scripts/remeasure_default.sh; float metrics as trained")
m = remeasure_int8(sys.argv[1], sys.argv[2], note)
print(json.dumps({k: {"int8_auc": v["int8"]["auc"], "degraded_auc": v["degraded"]["auc"]} for k, v in m.items()}, indent=2))
PY
