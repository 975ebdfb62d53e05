r"""Would a network pretrained on faces teach ours something? A probe with dlib's face descriptor.

The unmet targets of issue 11 are limited by what the backbone's features separate (head_refit.py).
dlib's face-recognition ResNet (public domain; trained on about 3 million faces of 7,485 people, not
on age or gender) gives a 128-number descriptor for a face. If a linear read-out of that descriptor,
or of it beside our features, tells ages and genders apart better than a read-out of our own features,
the descriptor is worth teaching to our network (an extra training target); if not, it is not.

    # 1. descriptors of the training and validation splits, in a separate environment with dlib
    #    (python -m venv /tmp/dlibenv; /tmp/dlibenv/bin/pip install dlib face_recognition_models
    #    numpy "opencv-python-headless<5"; /tmp/dlibenv/bin/pip install --no-deps -e .; about 15 min)
    /tmp/dlibenv/bin/python benchmarks/face_descriptor_probe.py describe --data $S/utkface \
        --train-every 2 --out runs/dlib_descriptors
    /tmp/dlibenv/bin/python benchmarks/face_descriptor_probe.py describe --data $S/aaf/labels.csv \
        --out runs/dlib_descriptors
    # 2. linear read-outs fitted on the training splits, scored on the validation splits (a table)
    python benchmarks/face_descriptor_probe.py probe --descriptors runs/dlib_descriptors \
        --features runs/headfit --markdown benchmarks/face_descriptor_probe.md

``--features`` is head_refit.py's cache of our model's pooled features (its ``features`` step). The
crops are read as the datasets give them (dlib finds its own 5 landmarks in each); the test splits
are never read.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

log = logging.getLogger("face_descriptor_probe")

SPLITS = ("train", "val")
RIDGE = 1.0  # fixed, the same for every feature set (nothing is tuned on validation)


# --- 1. descriptors (dlib's environment) --------------------------------------------------
def describe(data: list, out: str, train_every: int = 1, progress_every: int = 1000) -> None:
    import cv2
    import dlib
    import face_recognition_models as frm

    from agegender.train import data as data_mod

    shapes = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    network = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    os.makedirs(out, exist_ok=True)
    for source in data_mod.data_sources(data, None):
        records, _ = data_mod.read_source(source)
        for split in SPLITS:
            path = os.path.join(out, f"{source.name}_{split}.npz")
            if os.path.exists(path):
                log.info("%s exists, kept", path)
                continue
            chosen = data_mod.select_source_split(records, split, source)
            if split == "train":
                chosen = chosen[::train_every]  # dlib takes about 85 ms a face on this machine
            descriptors, started = [], time.time()
            for i, record in enumerate(chosen):
                image = cv2.cvtColor(cv2.imread(record.path), cv2.COLOR_BGR2RGB)
                h, w = image.shape[:2]
                # the crops are tight around the face: the whole crop is the face box
                shape = shapes(image, dlib.rectangle(0, 0, w - 1, h - 1))
                descriptors.append(np.array(network.compute_face_descriptor(image, shape), np.float32))
                if (i + 1) % progress_every == 0:
                    log.info("%s %s: %d/%d faces (%.0f s)", source.name, split, i + 1, len(chosen),
                             time.time() - started)
            np.savez(path, descriptors=np.stack(descriptors), names=np.array([r.name for r in chosen]),
                     ages=np.array([r.age for r in chosen], np.float32),
                     genders=np.array([r.gender for r in chosen], np.float32))
            log.info("%s: %d faces, %.0f s", path, len(chosen), time.time() - started)


# --- 2. linear read-outs ------------------------------------------------------------------
def ridge_fit(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE):
    """Least squares with an L2 penalty on standardised inputs; returns a predict function."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    penalty = ridge * np.eye(z.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not penalised
    coef = np.linalg.solve(z.T @ z + penalty, z.T @ y)
    return lambda new: np.hstack([(new - mean) / std, np.ones((len(new), 1))]) @ coef


def aligned(folder: str, split: str, names_wanted: dict, key: str) -> dict:
    """{dataset: (arrays of ``key``, ages, genders)} in the order of ``names_wanted[dataset]``."""
    out = {}
    for dataset, names in names_wanted.items():
        arrays = np.load(os.path.join(folder, f"{dataset}_{split}.npz"))
        index = {n: i for i, n in enumerate(arrays["names"])}
        rows = np.array([index[n] for n in names])
        out[dataset] = arrays[key][rows].astype(np.float64)
    return out


def probe(descriptors: str, features: str, markdown: str | None) -> None:
    from agegender.train import metrics as M
    from tables import show_and_save

    splits = {}
    for split in SPLITS:
        datasets = sorted(f[:-len(f"_{split}.npz")] for f in os.listdir(descriptors) if f.endswith(f"_{split}.npz"))
        labels = {d: np.load(os.path.join(descriptors, f"{d}_{split}.npz")) for d in datasets}
        names = {d: labels[d]["names"] for d in datasets}
        splits[split] = {
            "names": names,
            "ages": {d: labels[d]["ages"] for d in datasets},
            "genders": {d: labels[d]["genders"] for d in datasets},
            "dlib": aligned(descriptors, split, names, "descriptors"),
            "ours": aligned(features, split, names, "features"),
        }
    feature_sets = {"ours (1,280 pooled)": ("ours",), "dlib descriptor (128)": ("dlib",),
                    "ours + dlib": ("ours", "dlib")}
    train, val = splits["train"], splits["val"]
    datasets = sorted(val["names"])
    bands = ", ".join(M.band_name(lo, hi) for lo, hi in M.AGE_BANDS)
    lines = ["| linear read-out of | dataset (val) | age MAE | gender | gender 0-12 | gender 13+ | "
             f"age bias ({bands}) |", "|---|---|---:|---:|---:|---:|---|"]
    for label, keys in feature_sets.items():
        def stacked(part, keys=keys):
            return np.concatenate([np.hstack([part[k][d] for k in keys]) for d in datasets])
        x_train = stacked(train)
        ages_train = np.concatenate([train["ages"][d] for d in datasets])
        genders_train = np.concatenate([train["genders"][d] for d in datasets])
        age_of, gender_of = ridge_fit(x_train, ages_train), ridge_fit(x_train, genders_train)
        for d in datasets:
            x = np.hstack([val[k][d] for k in keys])
            ages, truth, genders = age_of(x), val["ages"][d], val["genders"][d]
            right = (gender_of(x) >= 0.5) == (genders >= 0.5)
            child = truth <= 12
            bias = " ".join(f"{b:+.2f}" for b in M.band_biases(M.mae_by_band(truth, ages)))
            lines.append(f"| {label} | {d} | {M.mae(truth, ages):.2f} | {right.mean():.1%} | "
                         f"{right[child].mean():.1%} | {right[~child].mean():.1%} | {bias} |")
            log.info(lines[-1])
    show_and_save("\n".join(lines) + "\n", markdown)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    desc = sub.add_parser("describe", help="dlib's descriptor of every training and validation crop")
    desc.add_argument("--data", action="append", required=True, help="a dataset, as agegender train takes it")
    desc.add_argument("--out", required=True, help="folder for NAME_SPLIT.npz")
    desc.add_argument("--train-every", type=int, default=1, metavar="K",
                      help="describe every K-th training face only (the validation splits whole)")
    prob = sub.add_parser("probe", help="linear read-outs of ours, dlib's and both; a table on validation")
    prob.add_argument("--descriptors", required=True, help="the describe step's --out folder")
    prob.add_argument("--features", required=True, help="head_refit.py's features folder (our pooled features)")
    prob.add_argument("--markdown", help="write the table here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "describe":
        describe(args.data, args.out, args.train_every)
    else:
        probe(args.descriptors, args.features, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
