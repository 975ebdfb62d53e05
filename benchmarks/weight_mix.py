r"""What mixing two models' weights does: (1 - a) x BASE + a x OTHER, scored on the validation splits.

Both models must have the same architecture and come from the same parent (as the runs of
``train/soup.py`` do), or their mean is not a model. Per mix: age MAE, gender accuracy and the
mean signed error of every age band, as ``agegender evaluate`` computes them (Keras model, crops
re-aligned by their landmarks):

    python benchmarks/weight_mix.py --base models/agegender_mnv2_128.keras --other runs/wild2/best.keras \
        --alphas 0,0.25,0.5,1 --data $S/utkface --data $S/aaf/labels.csv --align-detector YUNET
"""
from __future__ import annotations

import argparse

from agegender.train import data as data_mod
from agegender.train import metrics as M
from agegender.train.evaluate import compute_metrics, predict_records, split_with_landmarks
from agegender.train.keras_backend import open_any_model
from agegender.train.model_io import load_model


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
    sets = [(source.name, *split_with_landmarks(source, args.split, args.align_detector))
            for source in data_mod.data_sources(args.data, None)]
    bands = [M.band_name(lo, hi) for lo, hi in M.AGE_BANDS]
    print(f"| a | dataset | MAE | gender | sum of \\|bias\\| | {' | '.join(bands)} |")
    print("|---:|---|---:|---:|---:|" + "---:|" * len(bands))
    for alpha in (float(a) for a in args.alphas.split(",")):
        base_model.set_weights([((1 - alpha) * b + alpha * o).astype(b.dtype) for b, o in zip(base, other)])
        for name, records, landmarks in sets:
            metrics = compute_metrics(predict_records(model, records, landmarks=landmarks, progress_every=0))
            biases = [metrics["age_mae_by_band"][band]["bias"] for band in bands]
            print(f"| {alpha:.2f} | {name} {args.split} | {metrics['age_mae']:.2f} | "
                  f"{metrics['gender']['accuracy']:.1%} | {sum(abs(b) for b in biases):.1f} | "
                  + " | ".join(f"{b:+.2f}" for b in biases) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
