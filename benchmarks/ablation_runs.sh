#!/usr/bin/env bash
# What each augmentation family and the age balancing buy: short runs, scored on validation data only.
#
# Every run starts from the same model (PARENT, default: the model shipped before the multi-dataset one,
# taken from git) and fine-tunes 1 epoch on 2,500 faces of each of UTKFace and AAF (stratified), with
# one setting changed; its validation split (625 faces of each, stratified) scores it, then
# benchmarks/stability.py measures how steady its answers are on 100 pasted validation faces of each.
#   bash benchmarks/ablation_runs.sh runs/ablation      # about 40 min on the 2-core machine
#   python benchmarks/ablation_table.py runs/ablation > benchmarks/ablation/ablation.md
set -euo pipefail
OUT=${1:-runs/ablation}
S=${AGEGENDER_SHARED:-../shared}
D=$S/data
Y=${AGEGENDER_DETECTOR:-$D/detectors/face_detection_yunet_2023mar.onnx}
mkdir -p "$OUT"
PARENT=${PARENT:-$OUT/parent.keras}
if [ ! -f "$PARENT" ]; then  # the model shipped before (UTKFace only), with its card
  git show 8ec5a3f:models/agegender_mnv2_128.keras > "$PARENT"
  git show 8ec5a3f:models/agegender_mnv2_128.keras.json | python -c "
import json, sys; c = json.load(sys.stdin); c.update(schema_version=2, alignment='landmarks', task='multi'); print(json.dumps(c))" > "$PARENT.json"
fi
run() {  # name, then the options that differ
  local name=$1; shift
  [ -f "$OUT/$name/model.keras" ] || agegender -q train --data "$D/utkface" --data "$D/aaf/labels.csv" \
      --data-weight utkface=0.6 --data-weight aaf=0.4 --arch mobilenetv2 --init-from "$PARENT" \
      --align-detector "$Y" --img-size 128 --head-epochs 0 --epochs 1 --finetune-lr 1e-4 --max-images 2500 \
      --out "$OUT/$name" "$@"
  [ -f "$OUT/$name/stability.json" ] || python benchmarks/stability.py --model "$OUT/$name/model.keras" \
      --data "$D/utkface" --data "$D/aaf/labels.csv" --split val --n 100 --detector-model "$Y" \
      --json "$OUT/$name/stability.json" > /dev/null
}
FAMILIES="colour grey lowres blur noise jpeg jitter"
run none --augment none --age-balance 0.5
run all --augment all --age-balance 0.5
for f in $FAMILIES; do
  run "all-minus-$f" --augment "$(echo $FAMILIES | tr ' ' '\n' | grep -vx "$f" | paste -sd,)" --age-balance 0.5
done
run all-no-balance --augment all --age-balance 0
