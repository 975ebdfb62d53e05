r"""How far averaging several trained models' answers gets, on the validation splits.

An upper bound for what distilling those models into one could give: each model alone, then the
mean of their outputs (age distributions and gender probabilities averaged before decoding, as
mirror averaging does), with MAE, gender accuracy, every band's mean signed error and the
training's validation score (age MAE + 20 x gender error over both datasets together):

    python benchmarks/ensemble_val.py --model models/agegender_mnv2_128.keras --model runs/wild7/best.keras \
        --model runs/wild9/best.keras --data $S/utkface --data $S/aaf/labels.csv --align-detector YUNET \
        --markdown benchmarks/ensemble_val.md
"""
from __future__ import annotations

import argparse
import logging

import numpy as np

from agegender.train import data as data_mod
from agegender.train import metrics as M
from agegender.train.evaluate import Predictions, compute_metrics, predict_records, split_with_landmarks
from agegender.train.keras_backend import open_any_model
from tables import show_and_save

log = logging.getLogger("ensemble_val")


def row(label: str, predictions: dict) -> str:
    """One table row from {dataset: Predictions}."""
    cells, errors, rights = [], [], []
    for name in sorted(predictions):
        pred = predictions[name]
        metrics = compute_metrics(pred)
        bands = M.band_biases(metrics["age_mae_by_band"])
        cells.append(f"{metrics['age_mae']:.2f} / {metrics['gender']['accuracy']:.1%} | "
                     + " ".join(f"{b:+.2f}" for b in bands))
        errors.append(np.abs(pred.predicted_ages - pred.ages))
        rights.append((pred.female_prob >= 0.5) == (pred.genders == 1))
    score = np.concatenate(errors).mean() + 20 * (1 - np.concatenate(rights).mean())
    return f"| {label} | {score:.3f} | " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a model (.keras with its card); repeat")
    parser.add_argument("--data", action="append", required=True, help="a dataset, as agegender evaluate takes it")
    parser.add_argument("--align-detector", required=True, help="YuNet .onnx: crops re-aligned by their landmarks")
    parser.add_argument("--markdown", help="write the table here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    sets = {source.name: split_with_landmarks(source, "val", args.align_detector)
            for source in data_mod.data_sources(args.data, None)}
    names = sorted(sets)
    band_list = ", ".join(M.band_name(lo, hi) for lo, hi in M.AGE_BANDS)
    lines = ["| model | val score | " + " | ".join(f"{n} val MAE / gender | {n} val bias ({band_list})" for n in names)
             + " |", "|---|---:|" + "---|---|" * len(names)]
    outputs = []
    for path in args.model:
        model = open_any_model(path)
        by_dataset = {name: predict_records(model, records, landmarks=landmarks, progress_every=0)
                      for name, (records, landmarks) in sets.items()}
        outputs.append(by_dataset)
        lines.append(row(path, by_dataset))
        log.info(lines[-1])
    mean = {name: Predictions(outputs[0][name].records,
                              np.mean([o[name].age_distribution for o in outputs], axis=0),
                              np.mean([o[name].female_prob for o in outputs], axis=0)) for name in names}
    lines.append(row(f"mean of the {len(outputs)}", mean))
    show_and_save("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
