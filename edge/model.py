"""One age/gender model: a file, its card, and the three steps every user of it needs.

    model = AgeGenderModel.open("models/agegender_mnv2_128_int8.tflite")   # card read and checked
    inputs = model.preprocess(frame, landmarks=..., box=...)   # (views, S, S, 3): a face of a frame, as the card says
    inputs = model.preprocess_crop(crop, landmarks)            # (views, S, S, 3): a canonical training-style crop
    results = model.decode(model.run(batch, views=views))      # [AgeGender], absent heads -> None fields

``run`` hides the backend (LiteRT, onnxruntime, or Keras via ``agegender.train.keras_backend``)
and batches as the backend allows; ``decode`` is the one place where age, spread, group and gender
are decided. The runtime (``Estimator``), evaluation, export verification and calibration and the
benchmark all go through this class, so they feed and read a model the same way.
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from agegender.edge.backends import ModelError, open_model
from agegender.edge.card import ModelCard, ModelCardError
from agegender.edge.contract import canonical_inputs, check_views, face_inputs
from agegender.edge.postprocess import AgeGender, decode

log = logging.getLogger(__name__)


class AgeGenderModel:
    """A model file run through its backend, fed and read as its card says."""

    def __init__(self, backend, card: ModelCard):
        self.backend = backend
        self.card = card
        info = backend.info
        if card.contract.size != info.input_size:
            raise ModelCardError(f"{info.path}: takes {info.input_size}x{info.input_size} px but its card says "
                                 f"{card.contract.size} px: the card belongs to another model")
        if set(card.heads) != set(info.output_names):
            raise ModelCardError(f"{info.path}: has the outputs {list(info.output_names)} but its card lists "
                                 f"{list(card.heads)}: the card belongs to another model")
        group_width = getattr(info, "group_width", None)
        if "group" in card.heads and group_width not in (None, len(card.groups.names)):
            raise ModelCardError(f"{info.path}: its group head has {group_width} groups, its card names "
                                 f"{len(card.groups.names)}")
        self.batch_one = info.format == "tflite"  # TFLite files have a fixed batch of 1

    @classmethod
    def open(cls, path: str, threads: Optional[int] = None) -> "AgeGenderModel":
        """A .tflite or .onnx file and its card; the file's sha256 is checked against the card first,
        so a corrupt or swapped file is refused before any runtime reads it."""
        card = ModelCard.load_for(path)
        card.verify_file(path)
        return cls(open_model(path, threads), card)

    @property
    def contract(self):
        return self.card.contract

    @property
    def path(self) -> str:
        return self.backend.info.path

    # --- preprocess --------------------------------------------------------------
    def preprocess(self, image_rgb: np.ndarray, landmarks=None, box=None, views: int = 1) -> np.ndarray:
        """(views, S, S, 3): the model inputs for one face of a frame, by its landmarks, else by its
        box; one per alignment view (``contract.ALIGNMENT_VIEWS``), the face as aligned first."""
        return face_inputs(image_rgb, self.contract, landmarks=landmarks, box=box, views=views)

    def preprocess_crop(self, crop_rgb: np.ndarray, landmarks=None, views: int = 1) -> np.ndarray:
        """(views, S, S, 3): the model inputs for a canonical (UTKFace-style) crop, re-aligned by its
        own landmarks for a model trained that way (``alignment: landmarks``), else as it is."""
        if self.card.alignment != "landmarks":
            landmarks = None
        return canonical_inputs(crop_rgb, self.contract, landmarks, views=views)

    @property
    def wants_crop_landmarks(self) -> bool:
        """True when a crop given as it is should have its landmarks found and be re-aligned."""
        return self.card.alignment == "landmarks"

    # --- run and decode ------------------------------------------------------------
    def run(self, inputs: np.ndarray, batch_size: int = 64, flip: bool = False, views: int = 1) -> dict:
        """Raw outputs {head: (N, ...)} for (N x views, S, S, 3) uint8 inputs, each face's ``views``
        inputs in a row (as ``preprocess`` gives them): outputs averaged over a face's views and, with
        ``flip``, with their mirror images' (test-time augmentation, views x 2 the model time)."""
        inputs = np.asarray(inputs)
        views = check_views(views)
        if len(inputs) == 0:
            return {}
        if len(inputs) % views:
            raise ValueError(f"{len(inputs)} inputs are not whole faces of {views} views each")
        raw = self._run(inputs, batch_size)
        if flip:
            mirrored = self._run(np.ascontiguousarray(inputs[:, :, ::-1]), batch_size)
            raw = {k: (np.asarray(v, np.float64) + mirrored[k]) / 2 for k, v in raw.items()}
        if views > 1:
            raw = {k: np.asarray(v, np.float64).reshape(len(inputs) // views, views, *np.shape(v)[1:]).mean(1)
                   for k, v in raw.items()}
        return raw

    def _run(self, inputs: np.ndarray, batch_size: int) -> dict:
        try:  # a damaged model can fail inside its runtime: one clear error, never a traceback
            if self.batch_one:
                chunks = [self.backend.predict(x[None]) for x in inputs]
            else:
                chunks = [self.backend.predict(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
        except (RuntimeError, ValueError, IndexError, KeyError, TypeError) as exc:
            raise ModelError(f"{self.path}: the model failed to run ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
        try:
            return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        except (KeyError, ValueError) as exc:
            raise ModelError(f"{self.path}: inconsistent outputs ({exc})") from None

    def decode(self, raw: dict) -> list[AgeGender]:
        return decode(raw.get("age"), raw.get("gender"), self.card.groups, raw.get("group"))

    def predict_inputs(self, inputs: np.ndarray, flip: bool = False, views: int = 1) -> list[AgeGender]:
        return self.decode(self.run(inputs, flip=flip, views=views))
