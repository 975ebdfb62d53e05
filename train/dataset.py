"""The input pipeline: decode, cut to the input contract, augment, batch.

A ``keras.utils.PyDataset`` (backend-neutral: the same code feeds TensorFlow or
JAX). Images are read from disk batch by batch, never held in memory; OpenCV
releases the GIL, so the worker threads keep both cores busy while the model
trains. Every image goes through ``agegender.edge.contract.crop_to_input``, the
same function the edge runtime uses.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import cv2
import keras
import numpy as np

from agegender.edge.contract import crop_to_input
from agegender.edge.images import read_canonical
from agegender.train.data import FaceRecord


def augment(image: np.ndarray, rng: np.random.Generator, max_shift: float = 0.05,
            max_scale: float = 0.08, max_rotation: float = 8.0, brightness: float = 0.2) -> np.ndarray:
    """Random flip, small shift/scale/rotation, brightness and contrast, on a canonical crop."""
    size = image.shape[0]
    angle = rng.uniform(-max_rotation, max_rotation)
    scale = 1.0 + rng.uniform(-max_scale, max_scale)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-max_shift, max_shift, size=2) * size
    out = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain = 1.0 + rng.uniform(-brightness, brightness)
    bias = rng.uniform(-brightness, brightness) * 64
    return np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


class FaceSequence(keras.utils.PyDataset):
    """Batches of (uint8 images, {"age": ages, "gender": genders}) for one split."""

    def __init__(self, records: Sequence[FaceRecord], img_size: int, batch_size: int = 64,
                 augment_images: bool = False, shuffle: bool = False, seed: int = 0,
                 outputs: Sequence[str] = ("age", "gender"), workers: int = 2,
                 max_queue_size: int = 8, label_fn=None):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max_queue_size)
        self.records = list(records)
        self.img_size = img_size
        self.batch_size = batch_size
        self.augment_images = augment_images
        self.shuffle = shuffle
        self.outputs = tuple(outputs)
        self.label_fn = label_fn
        self._seed = seed
        self._epoch = 0
        self._order = np.arange(len(self.records))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.records) / self.batch_size)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = np.random.default_rng(self._seed + self._epoch).permutation(len(self.records))
        self._epoch += 1

    def images(self, index: int) -> np.ndarray:
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng((self._seed, self._epoch, index))
        batch = np.empty((len(idx), self.img_size, self.img_size, 3), np.uint8)
        for i, j in enumerate(idx):
            image = read_canonical(self.records[j].path)
            if self.augment_images:
                image = augment(image, rng)
            batch[i] = crop_to_input(image, self.img_size)
        return batch

    def labels(self, index: int) -> dict:
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        recs = [self.records[j] for j in idx]
        if self.label_fn is not None:
            return self.label_fn(recs)
        return labels_for(recs, self.outputs)

    def __getitem__(self, index: int):
        x = self.images(index).astype(np.float32)
        return x, self.labels(index)


def labels_for(records: Sequence[FaceRecord], outputs: Sequence[str],
               group_bounds: Optional[Sequence[int]] = None) -> dict:
    """Targets for the named model outputs."""
    out = {}
    ages = np.array([r.age for r in records], np.float32)
    if "age" in outputs:
        out["age"] = ages[:, None]
    if "gender" in outputs:
        out["gender"] = np.array([[r.gender] for r in records], np.float32)
    if "group" in outputs:
        bounds = np.asarray(group_bounds if group_bounds is not None else (0, 13, 20, 60))
        out["group"] = (np.searchsorted(bounds, ages, side="right") - 1).astype(np.int32)[:, None]
    return out
