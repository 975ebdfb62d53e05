#!/bin/bash
# Every architecture x task of the model zoo on the same data and split: short runs at 64 px
# (96 px for MobileNetV2). The long runs (the shipped MobileNetV2 multi-task model, the 96 px
# scratch CNN) are in accuracy.md.
#   AGEGENDER_DATA=... AGEGENDER_SHARED=... bash benchmarks/zoo_runs.sh [ZOO_DIR]
# Interrupted? Run it again: finished runs are kept, the interrupted one resumes.
set -euo pipefail
ZOO=${1:-runs/zoo}
DATA=${AGEGENDER_DATA:?set AGEGENDER_DATA to the UTKFace folder}
SHARED=${AGEGENDER_SHARED:-../shared}
COMMON="--data $DATA --img-size 64 --batch-size 64 --resume"
SCRATCH="--width 16 --epochs 3 --lr 2e-3"
mkdir -p "$ZOO"
for task in multi group age gender; do
  agegender train --arch cnn --task $task $COMMON $SCRATCH --out "$ZOO/cnn_$task"
  agegender train --arch cnn-skip --task $task $COMMON $SCRATCH --out "$ZOO/cnn-skip_$task"
  # stage 1 (autoencoder pretraining) runs once, in the multi run; the other tasks reuse its encoder
  if [ "$task" = multi ]; then AE=""; else AE="--weights $ZOO/autoencoder_multi/autoencoder/encoder.keras"; fi
  agegender train --arch autoencoder --task $task $COMMON --width 16 --ae-epochs 2 --head-epochs 1 --epochs 2 \
    --lr 2e-3 --finetune-lr 1e-3 $AE --out "$ZOO/autoencoder_$task"
  if [ "$task" != multi ]; then  # the multi-task MobileNetV2 is the shipped model
    agegender train --arch mobilenetv2 --task $task $COMMON --weights "$SHARED/data/weights/mobilenet_v2_1.0_224_no_top.h5" \
      --img-size 96 --head-epochs 1 --epochs 1 --out "$ZOO/mobilenetv2_$task"
  fi
done
