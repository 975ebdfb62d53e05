r"""Would another gender threshold for faces read as children help? On the validation splits.

Children's gender is where the shipped model is weakest. If its female probability for them were
merely shifted (girls read too male, say), moving the threshold for faces it reads as under 13
would buy accuracy for free. This prints, per dataset, the gender accuracy of the faces read
under 13 and from 13 up at thresholds 0.30 ... 0.70, and how many girls and boys are right at 0.5:

    python benchmarks/gender_threshold.py --model models/agegender_mnv2_128_int8.tflite \
        --data $S/utkface --data $S/aaf/labels.csv --align-detector YUNET \
        --markdown benchmarks/gender_threshold.md
"""
from __future__ import annotations

import argparse
import logging

import numpy as np

from agegender.train import data as data_mod
from agegender.train.evaluate import predict_records, split_with_landmarks
from agegender.train.keras_backend import open_any_model
from tables import show_and_save

THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
CHILD_BELOW = 13  # the predicted age under which a face counts as a child (the 0-12 bands)


def accuracy_by_threshold(female_prob: np.ndarray, is_female: np.ndarray, thresholds=THRESHOLDS) -> np.ndarray:
    """Gender accuracy when female is called from each threshold up."""
    calls = female_prob[None, :] >= np.asarray(thresholds)[:, None]
    return (calls == is_female[None, :].astype(bool)).mean(axis=1)


def rows(name: str, predicted_age: np.ndarray, female_prob: np.ndarray, is_female: np.ndarray) -> list[str]:
    """Table rows of one dataset: faces read as children, and the rest."""
    out = []
    for label, mask in ((f"read under {CHILD_BELOW}", predicted_age < CHILD_BELOW),
                        (f"read {CHILD_BELOW} or older", predicted_age >= CHILD_BELOW)):
        accuracy = accuracy_by_threshold(female_prob[mask], is_female[mask])
        girls = is_female[mask] == 1
        girls_right = np.mean(female_prob[mask][girls] >= 0.5)
        boys_right = np.mean(female_prob[mask][~girls] < 0.5)
        out.append(f"| {name} | {label} | {int(mask.sum())} | " + " | ".join(f"{a:.1%}" for a in accuracy)
                   + f" | {girls_right:.1%} / {boys_right:.1%} |")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model file with its card (.tflite, .onnx or .keras)")
    parser.add_argument("--data", action="append", required=True, help="a dataset, as agegender evaluate takes it")
    parser.add_argument("--align-detector", required=True, help="YuNet .onnx: crops re-aligned by their landmarks")
    parser.add_argument("--markdown", help="write the table here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    model = open_any_model(args.model)
    lines = ["| dataset (val) | faces | n | " + " | ".join(f"at {t:.2f}" for t in THRESHOLDS)
             + " | girls / boys right at 0.50 |", "|---|---|---:|" + "---:|" * len(THRESHOLDS) + "---|"]
    for source in data_mod.data_sources(args.data, None):
        records, landmarks = split_with_landmarks(source, "val", args.align_detector)
        pred = predict_records(model, records, landmarks=landmarks, progress_every=0)
        lines += rows(source.name, pred.predicted_ages, pred.female_prob, pred.genders)
    show_and_save("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
