#!/bin/bash
# Every architecture x task of the model zoo on the same data and split, short runs at 64 px
# (the shipped MobileNetV2 multi-task model is the long run; see accuracy.md).
#   AGEGENDER_DATA=... AGEGENDER_SHARED=... bash benchmarks/zoo_runs.sh [ZOO_DIR]
# Interrupted? Run it again: finished runs are kept, the interrupted one resumes.
set -euo pipefail
ZOO=${1:-runs/zoo}
DATA=${AGEGENDER_DATA:?set AGEGENDER_DATA to the UTKFace folder}
SHARED=${AGEGENDER_SHARED:-../shared}
COMMON="--data $DATA --img-size 64 --batch-size 64 --resume"
SCRATCH="--width 16 --epochs 4 --lr 2e-3"
mkdir -p "$ZOO"
for task in multi group age gender; do
  agegender train --arch cnn --task $task $COMMON $SCRATCH --out "$ZOO/cnn_$task"
  agegender train --arch cnn-skip --task $task $COMMON $SCRATCH --out "$ZOO/cnn-skip_$task"
  # stage 1 (autoencoder pretraining) runs once, in the multi run; the other tasks reuse its encoder
  if [ "$task" = multi ]; then AE=""; else AE="--weights $ZOO/autoencoder_multi/autoencoder/encoder.keras"; fi
  agegender train --arch autoencoder --task $task $COMMON --width 16 --ae-epochs 3 --head-epochs 1 --epochs 3 \
    --lr 2e-3 --finetune-lr 1e-3 $AE --out "$ZOO/autoencoder_$task"
done
for task in group age gender; do
  agegender train --arch mobilenetv2 --task $task $COMMON --weights "$SHARED/data/weights/mobilenet_v2_1.0_224_no_top.h5" \
    --img-size 96 --head-epochs 1 --epochs 2 --out "$ZOO/mobilenetv2_$task"
done
