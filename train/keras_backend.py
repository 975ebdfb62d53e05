"""A trained ``.keras`` model behind the same backend interface as LiteRT and onnxruntime.

So evaluation, export verification and calibration run a Keras model exactly as the runtime
runs an exported file: ``open_any_model(path)`` gives an ``AgeGenderModel`` for a ``.keras``,
``.tflite`` or ``.onnx`` file, with its card.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from agegender.edge.backends import ModelError, ModelInfo
from agegender.edge.card import ModelCard
from agegender.edge.model import AgeGenderModel


class KerasBackend:
    """``predict(batch) -> {head: array}`` for a Keras model (raw pixels in, as the exported files)."""

    def __init__(self, path: str, model=None):
        from agegender.train.model_io import load_model

        if model is None:
            if not os.path.isfile(path):
                raise ModelError(f"{path}: model file not found")
            model = load_model(path, compile=False)
        self.model = model
        heads = tuple(model.output.keys()) if isinstance(model.output, dict) else tuple(model.output_names)
        self.info = ModelInfo(path, "keras", "image", int(model.input_shape[1]), "float32", heads)
        if "group" in heads:
            self.info.group_width = int(model.output["group"].shape[-1])

    def predict(self, batch: np.ndarray) -> dict:
        # predict_on_batch runs the compiled graph: 8x faster than an eager call for one face
        out = self.model.predict_on_batch(np.asarray(batch, np.float32))
        return {k: np.asarray(v) for k, v in out.items()}


def open_any_model(path: str, threads: Optional[int] = None, keras_model=None) -> AgeGenderModel:
    """An AgeGenderModel for a .keras (with its training card), .tflite or .onnx file."""
    if path.endswith(".keras"):
        return AgeGenderModel(KerasBackend(path, keras_model), ModelCard.load_for(path))
    return AgeGenderModel.open(path, threads)
