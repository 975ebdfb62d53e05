"""The model zoo: one backbone, one head per task, dict outputs.

Every model takes the input contract's picture (N, S, S, 3) of raw RGB pixel values
0..255 (float32 in Keras; uint8 in the int8 TFLite export) and rescales inside its
graph. Outputs are a dict so TFLite and ONNX keep their names:

* ``age``: softmax over ages 0..100 (the age is its expectation, the spread its std)
* ``gender``: sigmoid, the probability of "female"
* ``group``: softmax over the age groups (only for ``--task group``)

Backbones (``--arch``): ``cnn`` (plain conv-pool blocks), ``cnn-skip`` (the same
depth with residual connections), ``mobilenetv2`` (ImageNet weights, passed by
path) and ``autoencoder`` (a convolutional encoder pretrained to reconstruct faces;
see ``autoencoder.py``). Backend-neutral Keras 3.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Optional

import keras
from keras import layers

from agegender.edge.card import TASK_HEADS
from agegender.edge.contract import AGE_BINS, AgeGroups

TASK_OUTPUTS = TASK_HEADS  # task -> output heads, as model cards name them
BACKBONE_NAME = "backbone"
log = logging.getLogger(__name__)


@dataclasses.dataclass
class ModelSpec:
    arch: str = "mobilenetv2"
    task: str = "multi"
    img_size: int = 128
    weights: Optional[str] = None  # ImageNet .h5 for mobilenetv2, encoder .keras for autoencoder
    dropout: float = 0.3
    head_units: int = 256
    n_groups: int = len(AgeGroups().names)  # the one definition of the age groups (edge/contract.py)
    width: int = 32  # base channels of the scratch CNNs
    random_backbone: bool = False  # mobilenetv2 without ImageNet weights (its weights come from --init-from)


def conv_block(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def cnn_backbone(spec: ModelSpec, skip: bool = False) -> keras.Model:
    """Four stages of two 3x3 convs + max-pool (channels w, 2w, 4w, 8w); optional residuals."""
    inputs = keras.Input((spec.img_size, spec.img_size, 3), name="scaled")
    x = inputs
    for stage in range(4):
        filters = spec.width * 2 ** stage
        name = f"stage{stage + 1}"
        shortcut = x
        x = conv_block(x, filters, f"{name}a")
        x = conv_block(x, filters, f"{name}b")
        if skip:
            shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(shortcut)
            shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
            x = layers.Add(name=f"{name}_add")([x, shortcut])
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = conv_block(x, spec.width * 8, "stage5")
    return keras.Model(inputs, x, name=BACKBONE_NAME)


def mobilenetv2_backbone(spec: ModelSpec) -> keras.Model:
    if not spec.weights and not spec.random_backbone:
        raise ValueError("mobilenetv2 needs --weights PATH to the ImageNet "
                         "mobilenet_v2_1.0_224_no_top.h5 (it cannot be downloaded here)")
    net = keras.applications.MobileNetV2(include_top=False, weights=spec.weights or None,
                                         input_shape=(spec.img_size, spec.img_size, 3))
    return keras.Model(net.input, net.output, name=BACKBONE_NAME)


def build_encoder(spec: ModelSpec, name: str = BACKBONE_NAME) -> keras.Model:
    """The encoder: input pixels scaled to 0..1 -> features at 1/16 of the input size."""
    encoder = cnn_backbone(spec)
    return keras.Model(encoder.input, encoder.output, name=name)


def autoencoder_backbone(spec: ModelSpec) -> keras.Model:
    """The age/gender backbone: the encoder architecture, with pretrained weights when
    ``spec.weights`` names an ``encoder.keras`` (or a whole autoencoder) file."""
    backbone = build_encoder(spec)
    if spec.weights:
        transfer_encoder_weights(spec.weights, backbone)
    return backbone


def transfer_encoder_weights(path: str, backbone: keras.Model) -> None:
    saved = keras.models.load_model(path, compile=False)
    if any(layer.name == "encoder" for layer in saved.layers):
        saved = saved.get_layer("encoder")
    source, target = saved.get_weights(), backbone.get_weights()
    if [w.shape for w in source] != [w.shape for w in target]:
        raise ValueError(f"{path}: encoder weights do not fit this backbone (trained with another "
                         "--img-size or --width?)")
    backbone.set_weights(source)
    log.info("backbone initialised from the pretrained encoder %s", path)


BACKBONES: dict[str, Callable[[ModelSpec], keras.Model]] = {
    "cnn": cnn_backbone,
    "cnn-skip": lambda spec: cnn_backbone(spec, skip=True),
    "mobilenetv2": mobilenetv2_backbone,
    "autoencoder": autoencoder_backbone,
}
# How each backbone wants its pixels: (scale, offset) applied to 0..255 values.
RESCALE = {
    "cnn": (1 / 255.0, 0.0),
    "cnn-skip": (1 / 255.0, 0.0),
    "mobilenetv2": (1 / 127.5, -1.0),
    "autoencoder": (1 / 255.0, 0.0),
}


def build_model(spec: ModelSpec) -> keras.Model:
    """Input (raw pixels) -> rescale -> backbone -> pooled features -> one head per output."""
    if spec.arch not in BACKBONES:
        raise ValueError(f"unknown architecture {spec.arch!r}; choose from {sorted(BACKBONES)}")
    if spec.task not in TASK_OUTPUTS:
        raise ValueError(f"unknown task {spec.task!r}; choose from {sorted(TASK_OUTPUTS)}")
    backbone = BACKBONES[spec.arch](spec)
    inputs = keras.Input((spec.img_size, spec.img_size, 3), name="image")
    scale, offset = RESCALE[spec.arch]
    x = layers.Rescaling(scale, offset, name="rescale")(inputs)
    x = backbone(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(spec.dropout, name="features_dropout")(x)
    outputs = {}
    for output in TASK_OUTPUTS[spec.task]:
        h = layers.Dense(spec.head_units, activation="relu", name=f"{output}_hidden")(x)
        h = layers.Dropout(spec.dropout, name=f"{output}_dropout")(h)
        if output == "age":
            outputs["age"] = layers.Dense(AGE_BINS, activation="softmax", name="age")(h)
        elif output == "gender":
            outputs["gender"] = layers.Dense(1, activation="sigmoid", name="gender")(h)
        else:
            outputs["group"] = layers.Dense(spec.n_groups, activation="softmax", name="group")(h)
    return keras.Model(inputs, outputs, name=f"{spec.arch}_{spec.task}_{spec.img_size}")


def backbone_of(model: keras.Model) -> keras.Model:
    return model.get_layer(BACKBONE_NAME)


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the backbone; its BatchNorm layers always stay in inference mode.

    With Keras 3.15, ``backbone(x, training=False)`` is not honoured once the backbone
    is trainable, so the BatchNorm statistics would drift on small batches: making
    every BatchNormalization layer non-trainable keeps them fixed.
    """
    backbone = backbone_of(model)
    backbone.trainable = trainable
    if trainable:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False


def count_params(model: keras.Model) -> int:
    return int(sum(int(w.numpy().size) if hasattr(w, "numpy") else int(w.size) for w in model.weights))
