#!/usr/bin/env bash
# A trained candidate against the shipped model, before anyone decides to ship it.
#
#   bash benchmarks/candidate_checks.sh runs/NAME/model.keras runs/NAME/checks     # about 13 min on 2 cores
#
# 1. exports the candidate as int8 TFLite + int8 ONNX (calibrated on UTKFace training faces, verified
#    against Keras on the UTKFace test split) and records its cross-dataset test table in each card;
# 2. scores the candidate's int8 TFLite and the shipped one on the **validation** splits (UTKFace val,
#    AAF val slice): MAE, gender, bias per band -> OUT/val_candidate, OUT/val_shipped;
# 3. measures stability on 300 pasted **validation** faces of each dataset and the shared photos, plain
#    and with predict's defaults (--flip --views 5 --refine-landmarks), for both -> OUT/stability_{candidate,shipped}{,_predict}.md;
# 4. scores both on about 400 **validation** faces of each dataset under camera damage, seen in training
#    and held out (benchmarks/degraded_val.py) -> OUT/degraded.md.
# The decision to ship reads steps 2 to 4 only (validation data); the test tables in the cards are for
# the report once it is made.
set -euo pipefail
CANDIDATE=$1
OUT=${2:-$(dirname "$CANDIDATE")/checks}
S=${AGEGENDER_SHARED:-../shared}
D=$S/data
Y=${AGEGENDER_DETECTOR:-$D/detectors/face_detection_yunet_2023mar.onnx}
SHIPPED=${SHIPPED:-models/agegender_mnv2_128_int8.tflite}
mkdir -p "$OUT"

agegender export "$CANDIDATE" --formats tflite-int8,onnx-int8 --calib "$D/utkface" --data "$D/utkface" \
    --align-detector "$Y" --cross-data "$D/utkface" --cross-data "$D/aaf/labels.csv" \
    --out "$OUT/export" --name agegender_mnv2_128 --report "$OUT/export/export.md"
TFLITE=$OUT/export/agegender_mnv2_128_int8.tflite

for who in candidate shipped; do
  model=$TFLITE; [ "$who" = shipped ] && model=$SHIPPED
  agegender evaluate "$model" --data "$D/utkface" --data "$D/aaf/labels.csv" --split val \
      --align-detector "$Y" --out "$OUT/val_$who"
  for averaging in "" "--flip --views 5 --refine-landmarks"; do
    python benchmarks/stability.py --model "$model" --data "$D/utkface" --data "$D/aaf/labels.csv" \
        --photos "$D/photos" --detector-model "$Y" --split val --n 300 $averaging \
        --json "$OUT/stability_$who${averaging:+_predict}.json" --markdown "$OUT/stability_$who${averaging:+_predict}.md"
  done
done
python benchmarks/degraded_val.py --model "candidate=$TFLITE" --model "shipped=$SHIPPED" --data "$D/utkface" \
    --data "$D/aaf/labels.csv" --align-detector "$Y" --n 400 --json "$OUT/degraded.json" --markdown "$OUT/degraded.md" > /dev/null
for f in "$OUT"/val_*/summary.md "$OUT"/stability_*.md "$OUT/degraded.md"; do echo "== $f"; cat "$f"; done
