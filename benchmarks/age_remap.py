r"""Can the age bias per band be fixed after training? A monotone re-map of the age bins.

The model reports age as the expectation of a distribution over the ages 0..100. Replacing
the bin ages 0..100 by other increasing values (a piecewise-linear map through 14 knots)
stretches or squeezes the answers without retraining. The knots are fitted on the
**validation** splits only (UTKFace val + the AAF val slice), minimising

    sum over the two datasets of  MAE + weight x mean over bands of (mean signed error)^2

for several weights, and every fitted map is then scored on the **test** splits. Weight 0
fits for MAE alone; larger weights trade MAE for smaller band biases. The question it answers:
is there a map that meets issue 11's band target (|bias| <= 1.5 y everywhere) without
giving up MAE? Not part of the runtime: a measurement.

    python benchmarks/age_remap.py --model models/agegender_mnv2_128_int8.tflite \
        --data $S/utkface --data $S/aaf/labels.csv --align-detector $S/detectors/face_detection_yunet_2023mar.onnx \
        --markdown benchmarks/age_remap.md
"""
from __future__ import annotations

import argparse
import logging

import numpy as np
from scipy.optimize import minimize

from agegender.train import data as data_mod
from agegender.train import metrics as M
from agegender.edge.postprocess import age_mean_std
from agegender.train.evaluate import format_figure, predict_records, split_with_landmarks
from agegender.train.keras_backend import open_any_model
from tables import show_and_save

KNOTS = np.array([0, 4, 8, 12, 16, 20, 25, 30, 40, 50, 60, 70, 80, 100], float)
BIN_AGES = np.arange(101, dtype=float)
WEIGHTS = (0.0, 0.05, 0.2, 1.0)


def bin_values(knot_values: np.ndarray) -> np.ndarray:
    """The age each of the 101 bins stands for, under the map through KNOTS -> knot_values."""
    return np.interp(BIN_AGES, KNOTS, knot_values)


def scores(dist: np.ndarray, ages: np.ndarray, values: np.ndarray) -> tuple[float, np.ndarray]:
    """(MAE, mean signed error per band of M.AGE_BANDS) of the re-mapped expectation."""
    predicted = age_mean_std(dist, values)[0]
    bands = M.mae_by_band(ages, predicted)
    return M.mae(ages, predicted), np.array(M.band_biases(bands))


def fit(val_sets: list, weight: float) -> np.ndarray:
    """Knot values minimising sum(MAE + weight x mean(bias^2)) over the validation sets; increasing."""
    def objective(knot_values):
        if np.any(np.diff(knot_values) <= 0):
            return 1e3
        values = bin_values(knot_values)
        total = 0.0
        for dist, ages in val_sets:
            mae, bias = scores(dist, ages, values)
            total += mae + weight * float(np.mean(bias ** 2))
        return total
    result = minimize(objective, KNOTS.copy(), method="Powell", options=dict(maxiter=20000, xtol=1e-3, ftol=1e-5))
    return result.x


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", action="append", required=True, metavar="[NAME=]PATH")
    p.add_argument("--align-detector", required=True, metavar="YUNET.onnx")
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    model = open_any_model(args.model)
    splits = {}
    for source in data_mod.data_sources(args.data, None):
        for split in ("val", "test"):
            chosen, landmarks = split_with_landmarks(source, split, args.align_detector)
            pred = predict_records(model, chosen, progress_every=0, landmarks=landmarks)
            splits[(source.name, split)] = (pred.age_distribution, pred.ages)
    val_sets = [v for (name, split), v in splits.items() if split == "val"]
    maps = [("none (ages 0..100)", KNOTS.copy())] + [(f"fitted, weight {w:g}", fit(val_sets, w)) for w in WEIGHTS]
    bands = " | ".join(M.band_name(lo, hi) for lo, hi in M.AGE_BANDS)
    lines = [f"Model `{args.model}`; maps fitted on the val splits, scored on each split.", "",
             f"| map | dataset | split | MAE | {bands} |", "|---|---|---|---:|" + "---:|" * len(M.AGE_BANDS)]
    for label, knot_values in maps:
        values = bin_values(knot_values)
        for (name, split), (dist, ages) in splits.items():
            mae, bias = scores(dist, ages, values)
            lines.append(f"| {label} | {name} | {split} | {mae:.2f} | " + " | ".join(format_figure(b, signed=True) for b in bias) + " |")
    lines += ["", "Knots (input age -> re-mapped age):", ""]
    for label, knot_values in maps[1:]:
        lines.append(f"- {label}: " + ", ".join(f"{k:.0f}->{v:.1f}" for k, v in zip(KNOTS, knot_values)))
    show_and_save("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
