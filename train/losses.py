"""Losses and metrics for an age head that predicts a distribution over ages 0..100.

The age target is a plain age (shape (N, 1)); the loss turns it into a Gaussian
label distribution (DLDL: Gao et al., "Deep Label Distribution Learning") and adds
an L1 term on the distribution's expectation, which is the age we report.
Backend-neutral: only ``keras.ops``.

Consistency (``--consistency``): training batches can hold every face twice, two independent
augmentations, the second half of the batch repeating the first (``FaceSequence(pairs=True)``).
The losses then add a penalty on the difference between the two views' answers (age
expectation in years, gender in logits), so the model learns to give one face one answer
whatever the crop, light or camera: the stability the runtime needs. A batch counts as paired
when its two halves carry identical labels, which an ordinary batch (validation) practically
never does (32 ages or genders matching by chance), so validation losses are unchanged.
"""
from __future__ import annotations

import keras
from keras import ops

from agegender.edge.contract import AGE_BINS


def _expectation(probs):
    ages = ops.arange(AGE_BINS, dtype="float32")
    return ops.sum(probs * ages, axis=-1)


def paired_difference(y_true, values):
    """Per-sample |difference| between a sample and its twin in the other half of a paired batch
    (sample i of the first half and sample i of the second); 0 everywhere for an unpaired batch."""
    n = ops.shape(values)[0]
    half = n // 2

    def twins(x):  # the first half and the second swapped (an odd last sample stays, its own twin)
        return ops.concatenate([x[half:2 * half], x[:half], x[2 * half:]], axis=0)

    labels = ops.reshape(ops.cast(y_true, "float32"), (n, -1))
    paired = ops.cast(ops.all(ops.equal(labels, twins(labels))), "float32")
    return ops.abs(values - twins(values)) * paired


@keras.saving.register_keras_serializable(package="agegender")
class AgeDistributionLoss(keras.losses.Loss):
    """Cross-entropy against a Gaussian around the true age + l1_weight * |E[age] - age|
    (+ consistency * |E[age] of view 1 - E[age] of view 2| on paired batches)."""

    def __init__(self, sigma: float = 2.0, l1_weight: float = 0.05, consistency: float = 0.0,
                 name: str = "age_distribution_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sigma = sigma
        self.l1_weight = l1_weight
        self.consistency = consistency

    def call(self, y_true, y_pred):
        age = ops.clip(ops.reshape(ops.cast(y_true, "float32"), (-1, 1)), 0.0, AGE_BINS - 1.0)
        bins = ops.reshape(ops.arange(AGE_BINS, dtype="float32"), (1, -1))
        target = ops.exp(-0.5 * ops.square((bins - age) / self.sigma))
        target = target / ops.sum(target, axis=-1, keepdims=True)
        probs = ops.clip(y_pred, 1e-7, 1.0)
        ce = -ops.sum(target * ops.log(probs), axis=-1)
        expectation = _expectation(y_pred)
        loss = ce + self.l1_weight * ops.abs(expectation - age[:, 0])
        if self.consistency:
            loss = loss + self.consistency * paired_difference(y_true, expectation)
        return loss

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "l1_weight": self.l1_weight,
                "consistency": self.consistency}


@keras.saving.register_keras_serializable(package="agegender")
class GenderLoss(keras.losses.Loss):
    """Binary cross-entropy (+ consistency * squared difference of the two views' logits on paired batches)."""

    def __init__(self, consistency: float = 0.0, name: str = "gender_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.consistency = consistency

    def call(self, y_true, y_pred):
        target = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        prob = ops.clip(ops.reshape(y_pred, (-1,)), 1e-6, 1.0 - 1e-6)
        loss = -(target * ops.log(prob) + (1.0 - target) * ops.log(1.0 - prob))
        if self.consistency:
            logit = ops.log(prob) - ops.log(1.0 - prob)
            loss = loss + self.consistency * ops.square(paired_difference(y_true, logit))
        return loss

    def get_config(self):
        return {**super().get_config(), "consistency": self.consistency}


@keras.saving.register_keras_serializable(package="agegender")
class AgeMAE(keras.metrics.MeanMetricWrapper):
    """Mean absolute error of the distribution's expectation, in years."""

    def __init__(self, name: str = "mae", dtype=None):
        super().__init__(fn=age_absolute_error, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="agegender")
def age_absolute_error(y_true, y_pred):
    age = ops.reshape(ops.cast(y_true, "float32"), (-1,))
    return ops.abs(_expectation(y_pred) - age)
