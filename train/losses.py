"""Losses and metrics for an age head that predicts a distribution over ages 0..100.

The age target is a plain age (shape (N, 1)); the loss turns it into a Gaussian
label distribution (DLDL: Gao et al., "Deep Label Distribution Learning") and adds
an L1 term on the distribution's expectation, which is the age we report.
Backend-neutral: only ``keras.ops``.
"""
from __future__ import annotations

import keras
from keras import ops

from agegender.edge.contract import AGE_BINS


def _expectation(probs):
    ages = ops.arange(AGE_BINS, dtype="float32")
    return ops.sum(probs * ages, axis=-1)


@keras.saving.register_keras_serializable(package="agegender")
class AgeDistributionLoss(keras.losses.Loss):
    """Cross-entropy against a Gaussian around the true age + l1_weight * |E[age] - age|."""

    def __init__(self, sigma: float = 2.0, l1_weight: float = 0.05, name: str = "age_distribution_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.sigma = sigma
        self.l1_weight = l1_weight

    def call(self, y_true, y_pred):
        age = ops.clip(ops.reshape(ops.cast(y_true, "float32"), (-1, 1)), 0.0, AGE_BINS - 1.0)
        bins = ops.reshape(ops.arange(AGE_BINS, dtype="float32"), (1, -1))
        target = ops.exp(-0.5 * ops.square((bins - age) / self.sigma))
        target = target / ops.sum(target, axis=-1, keepdims=True)
        probs = ops.clip(y_pred, 1e-7, 1.0)
        ce = -ops.sum(target * ops.log(probs), axis=-1)
        l1 = ops.abs(_expectation(y_pred) - age[:, 0])
        return ce + self.l1_weight * l1

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "l1_weight": self.l1_weight}


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
