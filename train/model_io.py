"""Reading and writing .keras models of this project: custom objects registered, writes atomic."""
from __future__ import annotations

import keras

from agegender.edge.files import atomic_path
from agegender.train import losses  # noqa: F401  (registers the custom loss and metric for loading)


def load_model(path: str, compile: bool = True) -> keras.Model:
    """Load a .keras model of this project."""
    return keras.models.load_model(path, compile=compile)


def atomic_save(model: keras.Model, path: str) -> None:
    """Save to a temporary name and rename: a crash never leaves half a model at ``path``."""
    with atomic_path(path) as tmp:
        model.save(tmp)
