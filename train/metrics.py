"""Metrics as pure numpy functions (checked against hand-computed values in the tests)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

# children are split in two: toddlers and school children are judged separately
AGE_BANDS = ((0, 6), (7, 12), (13, 19), (20, 39), (40, 59), (60, 200))


def band_name(lo: int, hi: int) -> str:
    return f"{lo}+" if hi >= 200 else f"{lo}-{hi}"


def mae(true, pred) -> float:
    true, pred = np.asarray(true, float), np.asarray(pred, float)
    return float(np.mean(np.abs(true - pred))) if true.size else float("nan")


def mean_signed_error(true, pred) -> float:
    """Mean of predicted - true: > 0 reads too old, < 0 too young."""
    true, pred = np.asarray(true, float), np.asarray(pred, float)
    return float(np.mean(pred - true)) if true.size else float("nan")


def mae_by_band(true_ages, pred_ages, bands=AGE_BANDS, gender_right=None) -> dict:
    """{band: {"mae", "bias", "n"}} for the age bands of the true age; bias = mean signed error.
    gender_right (one bool a face): each band also gets "gender_accuracy" (NaN for an empty band)."""
    true_ages, pred_ages = np.asarray(true_ages, float), np.asarray(pred_ages, float)
    out = {}
    for lo, hi in bands:
        mask = (true_ages >= lo) & (true_ages <= hi)
        out[band_name(lo, hi)] = {"mae": mae(true_ages[mask], pred_ages[mask]),
                                  "bias": mean_signed_error(true_ages[mask], pred_ages[mask]), "n": int(mask.sum())}
        if gender_right is not None:
            right = np.asarray(gender_right, bool)[mask]
            out[band_name(lo, hi)]["gender_accuracy"] = float(right.mean()) if right.size else float("nan")
    return out


def band_biases(by_band: dict, bands=AGE_BANDS) -> list[float]:
    """The mean signed errors of ``mae_by_band``'s result, in the order of ``bands``."""
    return [by_band[band_name(lo, hi)]["bias"] for lo, hi in bands]


def confusion_matrix(true, pred, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (np.asarray(true, int), np.asarray(pred, int)), 1)
    return matrix


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def per_class_scores(matrix: np.ndarray, names: Sequence[str]) -> dict:
    """Precision, recall, F1 and support per class, plus their macro averages and accuracy."""
    matrix = np.asarray(matrix)
    out = {}
    for i, name in enumerate(names):
        tp = matrix[i, i]
        precision = _ratio(tp, matrix[:, i].sum())
        recall = _ratio(tp, matrix[i, :].sum())
        f1 = _ratio(2 * precision * recall, precision + recall)
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(matrix[i].sum())}
    out["macro"] = {k: float(np.mean([out[n][k] for n in names])) for k in ("precision", "recall", "f1")}
    out["accuracy"] = _ratio(np.trace(matrix), matrix.sum())
    return out


def binary_scores(true, pred) -> dict:
    """Accuracy, precision, recall, F1 for the positive class 1 (here: female)."""
    true, pred = np.asarray(true, int), np.asarray(pred, int)
    tp = int(((true == 1) & (pred == 1)).sum())
    fp = int(((true == 0) & (pred == 1)).sum())
    fn = int(((true == 1) & (pred == 0)).sum())
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {"accuracy": _ratio((true == pred).sum(), true.size), "precision": precision,
            "recall": recall, "f1": _ratio(2 * precision * recall, precision + recall), "n": int(true.size)}

