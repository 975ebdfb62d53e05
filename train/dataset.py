"""The input pipeline: decode, cut to the input contract, augment, batch.

A ``keras.utils.PyDataset`` (backend-neutral: the same code feeds TensorFlow or
JAX). Images are read from disk batch by batch, never held in memory; OpenCV
releases the GIL, so the worker threads keep both cores busy while the model
trains. Every image goes through ``agegender.edge.contract.crop_to_input``, the
same function the edge runtime uses.

With ``landmarks`` (found once per crop by the runtime's detector, see
``agegender.train.landmarks``), every crop is re-aligned exactly as the runtime aligns a
camera face (``face_input``), and training augmentation imitates the camera path: the
face shrunk or enlarged and rotated as in a frame, its landmarks moved with it plus
detector noise, then aligned back. The model then sees in training what it sees on a Pi.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import cv2
import keras
import numpy as np

from agegender.edge.contract import AgeGroups, InputContract, canonical_input, crop_to_input, face_input
from agegender.edge.images import read_canonical
from agegender.train import augment as aug
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
    return photometric(out, rng, brightness)


def photometric(image: np.ndarray, rng: np.random.Generator, brightness: float = 0.2) -> np.ndarray:
    """Random horizontal flip, brightness and contrast."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    gain = 1.0 + rng.uniform(-brightness, brightness)
    bias = rng.uniform(-brightness, brightness) * 64
    return np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def camera_view(crop: np.ndarray, landmarks: np.ndarray, contract: InputContract,
                rng: np.random.Generator, scale_range=(0.45, 1.4), max_rotation: float = 15.0,
                landmark_noise: float = 0.012) -> np.ndarray:
    """The model input the runtime would cut from a camera frame showing this crop.

    The crop is resized (INTER_AREA when shrinking, like a camera's lower resolution),
    padded with mirrored context and rotated; its landmarks follow, plus Gaussian noise of
    ``landmark_noise`` x face size (detector jitter); ``face_input`` aligns it back.
    """
    size = crop.shape[0]
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    side = max(16, int(round(size * scale)))
    scaled = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if side < size else cv2.INTER_LINEAR)
    pad = side // 3
    frame = cv2.copyMakeBorder(scaled, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    centre = (frame.shape[1] / 2, frame.shape[0] / 2)
    rotation = cv2.getRotationMatrix2D(centre, rng.uniform(-max_rotation, max_rotation), 1.0)
    frame = cv2.warpAffine(frame, rotation, frame.shape[1::-1], flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT_101)
    points = np.asarray(landmarks, np.float32) * (side / size) + pad
    points = points @ rotation[:, :2].T + rotation[:, 2]
    points = points + rng.normal(0.0, landmark_noise * side, size=points.shape)
    return face_input(frame, contract, landmarks=points)


class FaceSequence(keras.utils.PyDataset):
    """Batches of (uint8 images, {"age": ages, "gender": genders}) for one split."""

    def __init__(self, records: Sequence[FaceRecord], contract: InputContract, batch_size: int = 64,
                 augment_images: bool = False, shuffle: bool = False, seed: int = 0,
                 outputs: Sequence[str] = ("age", "gender"), workers: int = 2,
                 max_queue_size: int = 8, label_fn=None, landmarks: Optional[dict] = None,
                 camera_fraction: float = 0.8, families: Sequence[str] = (),
                 sampling_p: Optional[np.ndarray] = None, epoch_size: Optional[int] = None,
                 pairs: bool = False):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max_queue_size)
        self.records = list(records)
        self.contract = contract  # from the run's model card
        self.img_size = contract.size
        self.batch_size = batch_size
        self.augment_images = augment_images
        self.shuffle = shuffle
        self.outputs = tuple(outputs)
        self.label_fn = label_fn
        self.landmarks = landmarks or {}
        self.camera_fraction = camera_fraction
        self.families = tuple(families)
        self.camera_params = aug.camera_parameters(self.families)
        # with sampling probabilities, each epoch draws epoch_size faces with replacement
        self.sampling_p = None if sampling_p is None else np.asarray(sampling_p, float)
        self.epoch_size = epoch_size or len(self.records)
        # pairs: each batch is batch_size // 2 faces, then the same faces again, augmented anew
        # (the consistency losses compare the halves; see train/losses.py)
        self.pairs = pairs
        self._seed = seed
        self._epoch = 0
        self._order = np.arange(len(self.records))
        self.on_epoch_end()

    def __len__(self) -> int:  # paired: as many batches (and images) per epoch, half as many faces
        return math.ceil(len(self._order) / self.batch_size)

    def on_epoch_end(self) -> None:
        rng = np.random.default_rng(self._seed + self._epoch)
        if self.sampling_p is not None:
            self._order = rng.choice(len(self.records), size=self.epoch_size, replace=True, p=self.sampling_p)
        elif self.shuffle:
            self._order = rng.permutation(len(self.records))
        self._epoch += 1

    def batch_indices(self, index: int) -> np.ndarray:
        """Which records batch ``index`` holds, in order (a paired batch: the faces, then again)."""
        if not self.pairs:
            return self._order[index * self.batch_size:(index + 1) * self.batch_size]
        half = self.batch_size // 2
        faces = self._order[index * half:(index + 1) * half]
        return np.concatenate([faces, faces])

    def images(self, index: int) -> np.ndarray:
        idx = self.batch_indices(index)
        rng = np.random.default_rng((self._seed, self._epoch, index))
        batch = np.empty((len(idx), self.img_size, self.img_size, 3), np.uint8)
        for i, j in enumerate(idx):
            batch[i] = self.model_input(self.records[j], rng)
        return batch

    def model_input(self, record, rng: np.random.Generator) -> np.ndarray:
        image = read_canonical(record.path)
        points = self.landmarks.get(record.name)
        if not self.augment_images:
            return canonical_input(image, self.contract, points)
        image = aug.before_alignment(image, rng, self.families)
        if points is not None and rng.random() < self.camera_fraction:
            scales, rotation, noise = self.camera_params
            out = photometric(camera_view(image, points, self.contract, rng, scales, rotation, noise), rng)
        else:
            out = crop_to_input(augment(image, rng), self.img_size)
        return aug.after_alignment(out, rng, self.families)

    def labels(self, index: int) -> dict:
        idx = self.batch_indices(index)
        recs = [self.records[j] for j in idx]
        if self.label_fn is not None:
            return self.label_fn(recs)
        return labels_for(recs, self.outputs, self.contract.age_groups)

    def __getitem__(self, index: int):
        x = self.images(index).astype(np.float32)
        return x, self.labels(index)


def labels_for(records: Sequence[FaceRecord], outputs: Sequence[str], groups: AgeGroups) -> dict:
    """Targets for the named model outputs (age groups: the run's card's)."""
    out = {}
    ages = np.array([r.age for r in records], np.float32)
    if "age" in outputs:
        out["age"] = ages[:, None]
    if "gender" in outputs:
        out["gender"] = np.array([[r.gender] for r in records], np.float32)
    if "group" in outputs:
        out["group"] = groups.index_of(ages).astype(np.int32)[:, None]
    return out
