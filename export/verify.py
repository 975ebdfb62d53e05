"""Verification: run every exported file with its edge backend against the Keras model.

The same test-split crops go through the Keras model and through each file
(LiteRT / onnxruntime); we report age MAE, gender accuracy and age-group accuracy
for each, and their differences from Keras. A format whose MAE grows by more than
``max_mae_increase`` years, or whose gender accuracy drops by more than
``max_gender_drop`` points, fails.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Optional

import numpy as np

from agegender.edge.backends import open_model
from agegender.edge.contract import AgeGroups
from agegender.edge.model import AgeGenderModel
from agegender.edge.postprocess import age_mean_std
from agegender.train.evaluate import Predictions, compute_metrics, predictions_from

log = logging.getLogger(__name__)

DEFAULT_MAX_MAE_INCREASE = 0.25  # years
DEFAULT_MAX_GENDER_DROP = 0.5  # percentage points


@dataclasses.dataclass
class FormatCheck:
    format: str
    path: str
    metrics: dict  # age_mae, gender_accuracy, age_group_accuracy (+ keras reference, changes)
    max_abs_age_diff: float  # largest per-face |age - keras age|
    passed: bool
    reason: str = ""


def summarise(pred: Predictions, groups: AgeGroups) -> dict:
    m = compute_metrics(pred, groups)
    out = {}
    if "age_mae" in m:
        out["age_mae"] = m["age_mae"]
    if "gender" in m:
        out["gender_accuracy"] = m["gender"]["accuracy"]
    if "age_group" in m:
        out["age_group_accuracy"] = m["age_group"]["accuracy"]
    return out


def check_format(fmt: str, path: str, card, records, images: np.ndarray, keras_outputs: dict,
                 keras_metrics: dict, max_mae_increase: float = DEFAULT_MAX_MAE_INCREASE,
                 max_gender_drop: float = DEFAULT_MAX_GENDER_DROP, threads: Optional[int] = None) -> FormatCheck:
    """Run the exported file as the runtime will (its backend, fed as its card says) and compare."""
    outputs = AgeGenderModel(open_model(path, threads), card).run(images)
    metrics = summarise(predictions_from(records, outputs), card.groups)
    metrics["keras"] = keras_metrics
    reasons = []
    if "age_mae" in metrics:
        metrics["age_mae_change"] = metrics["age_mae"] - keras_metrics["age_mae"]
        if metrics["age_mae_change"] > max_mae_increase:
            reasons.append(f"age MAE +{metrics['age_mae_change']:.3f} > {max_mae_increase} years")
    if "gender_accuracy" in metrics:
        metrics["gender_accuracy_change"] = metrics["gender_accuracy"] - keras_metrics["gender_accuracy"]
        if -metrics["gender_accuracy_change"] * 100 > max_gender_drop:
            reasons.append(f"gender accuracy {metrics['gender_accuracy_change'] * 100:+.2f} points "
                           f"(limit -{max_gender_drop})")
    max_diff = 0.0
    if "age" in outputs:
        max_diff = float(np.max(np.abs(age_mean_std(outputs["age"])[0] - age_mean_std(keras_outputs["age"])[0])))
    check = FormatCheck(fmt, path, metrics, max_diff, not reasons, "; ".join(reasons))
    log.info("%s: %s%s", fmt, {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)},
             "" if check.passed else f" FAILED: {check.reason}")
    return check
