"""What mixing two models' weights does: (1 - a) x BASE + a x OTHER, scored on the validation splits.

Both models must have the same architecture and come from the same parent (as the runs of
``train/soup.py`` do), or their mean is not a model. Per mix: age MAE, gender accuracy and the
mean signed error of every age band, as ``agegender evaluate`` computes them (Keras model, crops
re-aligned by their landmarks):

    python benchmarks/weight_mix.py --base models/agegender_mnv2_128.keras --other runs/wild2/best.keras \
        --alphas 0,0.25,0.5 --data $S/utkface --data $S/aaf/labels.csv --align-detector YUNET
"""
from __future__ import annotations

import argparse

import numpy as np

from agegender.train import data as data_mod
from agegender.train import metrics as M
from agegender.train.evaluate import predict_records
from agegender.train.keras_backend import open_any_model
from agegender.train.landmarks import load_landmarks
from agegender.train.model_io import load_model


def band_biases(true_ages: np.ndarray, predicted: np.ndarray) -> list[float]:
    return [M.mean_signed_error(true_ages[m], predicted[m])
            for lo, hi in M.AGE_BANDS for m in [(true_ages >= lo) & (true_ages <= hi)]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help=".keras model (its card describes the mix)")
    parser.add_argument("--other", required=True, help=".keras model of the same architecture")
    parser.add_argument("--alphas", default="0,0.25,0.5", help="weights of OTHER, comma-separated")
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--align-detector", required=True)
    parser.add_argument("--split", default="val", choices=["val", "test"])
    args = parser.parse_args(argv)

    base_model = load_model(args.base, compile=False)
    base, other = base_model.get_weights(), load_model(args.other, compile=False).get_weights()
    model = open_any_model(args.base, keras_model=base_model)
    sets = []
    for item in args.data:
        source = data_mod.DataSource.parse(item)
        records, _ = data_mod.read_source(source)
        records = data_mod.select_source_split(records, args.split, source)
        sets.append((source.name, records, load_landmarks(records, source.path, args.align_detector)))
    bands = " | ".join(M.band_name(lo, hi) for lo, hi in M.AGE_BANDS)
    print(f"| a | dataset | MAE | gender | sum of \\|bias\\| | {bands} |")
    print("|---:|---|---:|---:|---:|" + "---:|" * len(M.AGE_BANDS))
    for alpha in (float(a) for a in args.alphas.split(",")):
        base_model.set_weights([((1 - alpha) * b + alpha * o).astype(b.dtype) for b, o in zip(base, other)])
        for name, records, landmarks in sets:
            pred = predict_records(model, records, landmarks=landmarks, progress_every=0)
            biases = band_biases(pred.ages, pred.predicted_ages)
            gender = np.mean(pred.genders == (pred.female_prob >= 0.5))
            print(f"| {alpha:.2f} | {name} {args.split} | {M.mae(pred.ages, pred.predicted_ages):.2f} | {gender:.1%} | "
                  f"{np.sum(np.abs(biases)):.1f} | " + " | ".join(f"{b:+.2f}" for b in biases) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
