"""A convolutional autoencoder whose encoder becomes an age/gender backbone.

Stage 1 (``pretrain_autoencoder``): the encoder (the same conv-pool stages as the
``cnn`` architecture) and a mirrored decoder learn to reconstruct training faces
(mean absolute error on pixels scaled to 0..1). It writes ``autoencoder.keras``,
``encoder.keras``, ``history.csv`` and ``reconstructions.png`` (originals above,
reconstructions below, from the validation split).

Stage 2 (``agegender train --arch autoencoder``): the encoder's weights are copied
into the age/gender model's backbone (``encoder_backbone``), which trains first
frozen (phase ``head``), then unfrozen (phase ``finetune``), like MobileNetV2.
Without ``--weights``, ``train`` runs stage 1 itself into ``OUT/autoencoder``.

Backend-neutral Keras 3.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
import time
from typing import Optional, Sequence

import keras
import numpy as np
from keras import layers

from agegender.train.models import ModelSpec, build_encoder, conv_block

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.keras"


def build_autoencoder(spec: ModelSpec) -> tuple[keras.Model, keras.Model]:
    """(autoencoder, encoder): raw pixels 0..255 in, a 0..1 reconstruction out."""
    if spec.img_size % 16:
        raise ValueError(f"the autoencoder needs an input size divisible by 16, got {spec.img_size}")
    encoder = build_encoder(spec, name="encoder")
    inputs = keras.Input((spec.img_size, spec.img_size, 3), name="image")
    x = layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    x = encoder(x)
    for stage in reversed(range(4)):
        x = layers.UpSampling2D(2, name=f"up{stage + 1}")(x)
        x = conv_block(x, spec.width * 2 ** stage, f"dec{stage + 1}")
    outputs = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=f"autoencoder_{spec.img_size}"), encoder


class ReconstructionSequence(keras.utils.PyDataset):
    """(images, images / 255) batches from a FaceSequence's inputs."""

    def __init__(self, faces):
        super().__init__(workers=faces.workers, use_multiprocessing=False)
        self.faces = faces

    def __len__(self) -> int:
        return len(self.faces)

    def on_epoch_end(self) -> None:
        self.faces.on_epoch_end()

    def __getitem__(self, index: int):
        x = self.faces.images(index).astype(np.float32)
        return x, x / 255.0


@dataclasses.dataclass
class PretrainResult:
    encoder_path: str
    val_mae: float
    seconds: float
    epochs: int


def pretrain_autoencoder(train_records: Sequence, val_records: Sequence, out: str, spec: ModelSpec,
                         contract, epochs: int = 5, batch_size: int = 64, lr: float = 2e-3, workers: int = 2,
                         landmarks: Optional[dict] = None) -> PretrainResult:
    """Stage 1 (faces cut by ``contract``, the run's card's); reuses ``OUT/encoder.keras`` when a
    previous run already finished it."""
    from agegender.train.dataset import FaceSequence

    os.makedirs(out, exist_ok=True)
    encoder_path = os.path.join(out, ENCODER_FILE)
    history_path = os.path.join(out, "history.csv")
    if os.path.isfile(encoder_path) and os.path.isfile(history_path):
        rows = list(csv.DictReader(open(history_path)))
        log.info("autoencoder already pretrained: %s", encoder_path)
        return PretrainResult(encoder_path, float(rows[-1]["val_loss"]),
                              float(sum(float(r["seconds"]) for r in rows)), len(rows))
    train_seq = FaceSequence(train_records, contract, batch_size, augment_images=True, shuffle=True,
                             workers=workers, landmarks=landmarks)
    val_seq = FaceSequence(val_records, contract, batch_size, workers=workers, landmarks=landmarks)
    autoencoder, encoder = build_autoencoder(spec)
    autoencoder.compile(optimizer=keras.optimizers.Adam(lr), loss="mae")
    log.info("pretraining the autoencoder: %d images, %d epochs, %d parameters", len(train_records), epochs,
             autoencoder.count_params())
    started = time.time()
    history = autoencoder.fit(ReconstructionSequence(train_seq), validation_data=ReconstructionSequence(val_seq),
                              epochs=epochs, verbose=2)
    seconds = time.time() - started
    from agegender.train.model_io import atomic_save

    atomic_save(autoencoder, os.path.join(out, "autoencoder.keras"))
    save_reconstructions(autoencoder, val_seq, os.path.join(out, "reconstructions.png"))
    with open(history_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "loss", "val_loss", "seconds"])
        for i, (loss, val) in enumerate(zip(history.history["loss"], history.history["val_loss"]), 1):
            writer.writerow([i, round(loss, 6), round(val, 6), round(seconds / epochs, 1)])
    atomic_save(encoder, encoder_path)  # last: its presence marks stage 1 as done
    val_mae = float(history.history["val_loss"][-1])
    log.info("autoencoder: validation reconstruction MAE %.4f (pixels 0..1), %.0f s", val_mae, seconds)
    return PretrainResult(encoder_path, val_mae, seconds, epochs)


def save_reconstructions(autoencoder: keras.Model, faces, path: str, n: int = 8) -> None:
    """Originals (top row) over their reconstructions (bottom row)."""
    images = faces.images(0)[:n]
    recon = np.asarray(autoencoder(images.astype(np.float32), training=False))
    grid = np.concatenate([np.concatenate(list(images), axis=1),
                           np.concatenate(list((recon * 255).clip(0, 255).astype(np.uint8)), axis=1)], axis=0)
    import cv2

    from agegender.edge.files import atomic_write_bytes

    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if ok:
        atomic_write_bytes(path, png.tobytes())
