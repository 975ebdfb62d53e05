r"""Refit only a model's heads on its own frozen features: what the last layers alone can fix.

The band biases of issue 11 (young faces read too old, old faces too young) could come from the
backbone (it cannot tell the ages apart) or only from the heads (they pull answers toward the
dense 20-35 range they saw most). Refitting the heads on cached backbone features answers that in
minutes on a CPU, where a full training run takes an hour:

    # 1. cache the pooled features of the training and validation splits (about 3 min on 2 cores)
    python benchmarks/head_refit.py features --model models/agegender_mnv2_128.keras \
        --data $S/utkface --data $S/aaf/labels.csv --align-detector YUNET --out runs/headfit
    # 2. refit the heads with each setting, score on the validation splits (a table)
    python benchmarks/head_refit.py fit --model models/agegender_mnv2_128.keras --features runs/headfit \
        --age-balance 0,0.5,1,1.5 --markdown benchmarks/head_refit.md [--fresh --lr 1e-3]
    # the same on the feature map before the pooling: may the heads weigh each position?
    python benchmarks/head_refit.py features --spatial ... --out runs/headfit_spatial
    python benchmarks/head_refit.py fit ... --features runs/headfit_spatial --pooling gap,gdc
    # the model's own heads, the age read off the mean (the runtime's), median or peak of its distribution
    python benchmarks/head_refit.py decode --model models/agegender_mnv2_128.keras --features runs/headfit

Features are the backbone's pooled output for each crop, re-aligned by its landmarks as the
runtime aligns camera faces (the training splits also mirrored). Heads are fitted on the training
splits only; every figure of ``fit`` is on the validation splits (its first row, the model's own
heads, reproduces the model's validation score; its second shows the same heads on their training
faces, for comparison).
"""
from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

from tables import show_and_save

log = logging.getLogger("head_refit")

SPLITS = ("train", "val")  # the test splits are never read here
FEATURE_LAYER = "pool"


# --- 1. features -------------------------------------------------------------------------
def feature_model(keras_model, spatial: bool = False):
    """The pooled features, or (``spatial``) the backbone's feature map before the pooling."""
    import keras

    pool = keras_model.get_layer(FEATURE_LAYER)
    return keras.Model(keras_model.input, pool.input if spatial else pool.output)


def cache_features(model_path: str, data: list, align_detector: str, out: str, batch_size: int = 128,
                   spatial: bool = False) -> None:
    from agegender.train import data as data_mod
    from agegender.train.evaluate import model_inputs, split_with_landmarks
    from agegender.train.keras_backend import open_any_model
    from agegender.train.model_io import load_model

    keras_model = load_model(model_path, compile=False)
    model = open_any_model(model_path, keras_model=keras_model)
    features = feature_model(keras_model, spatial)
    os.makedirs(out, exist_ok=True)
    for source in data_mod.data_sources(data, None):
        for split in SPLITS:
            path = os.path.join(out, f"{source.name}_{split}.npz")
            if os.path.exists(path):
                log.info("%s exists, kept", path)
                continue
            records, landmarks = split_with_landmarks(source, split, align_detector)
            mirrored = split == "train"
            chunks, mirror_chunks = [], []
            started = time.time()
            for start in range(0, len(records), batch_size):
                inputs = model_inputs(model, records[start:start + batch_size], landmarks).astype(np.float32)
                chunks.append(features.predict_on_batch(inputs).astype(np.float16))
                if mirrored:
                    mirror_chunks.append(features.predict_on_batch(inputs[:, :, ::-1]).astype(np.float16))
                if (start // batch_size) % 20 == 19:
                    log.info("%s %s: %d/%d faces (%.0f s)", source.name, split, start + batch_size,
                             len(records), time.time() - started)
            arrays = {"features": np.concatenate(chunks),
                      "ages": np.array([r.age for r in records], np.float32),
                      "genders": np.array([r.gender for r in records], np.float32),
                      "names": np.array([r.name for r in records])}
            if mirrored:
                arrays["mirrored"] = np.concatenate(mirror_chunks)
            np.savez(path, **arrays)
            log.info("%s: %d faces, %.0f s", path, len(records), time.time() - started)


# --- 2. heads refitted on the features ---------------------------------------------------
def load_split(folder: str, split: str) -> dict:
    """{dataset name: arrays of NAME_SPLIT.npz} for every dataset cached in ``folder``."""
    names = sorted(f[:-len(f"_{split}.npz")] for f in os.listdir(folder) if f.endswith(f"_{split}.npz"))
    if not names:
        raise SystemExit(f"{folder}: no *_{split}.npz (run the features step first)")
    return {name: dict(np.load(os.path.join(folder, f"{name}_{split}.npz"))) for name in names}


def head_model(keras_model, fresh: bool, seed: int, feature_shape: tuple | None = None, pooling: str = "gap"):
    """The model's heads on a features input, with the model's weights (or freshly initialised).

    On a spatial feature map (``feature_shape`` of 3 dimensions) the heads pool it first: ``gap``
    averages it as the model does; ``gdc`` (a global depthwise convolution, as in MobileFaceNets)
    learns a weight for every position of every channel, started at the average (so it begins as
    the model's own heads); ``flat`` reduces the channels (1x1 convolution to 96) and keeps every
    position (fresh heads only)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    feature_shape = tuple(feature_shape or (keras_model.get_layer(FEATURE_LAYER).output.shape[-1],))
    features = keras.Input(feature_shape, name="features")
    x = features
    if len(feature_shape) == 3:
        height, width = feature_shape[:2]
        if pooling == "gap":
            x = layers.GlobalAveragePooling2D()(x)
        elif pooling == "gdc":
            x = layers.DepthwiseConv2D((height, width), padding="valid", name="gdc",
                                       depthwise_initializer=keras.initializers.Constant(1.0 / (height * width)),
                                       bias_initializer="zeros")(x)
            x = layers.Flatten()(x)
        elif pooling == "flat":
            x = layers.Conv2D(96, 1, activation="relu", name="reduce")(x)
            x = layers.Flatten()(x)
        else:
            raise ValueError(f"unknown pooling {pooling!r}: gap, gdc or flat")
    x = layers.Dropout(keras_model.get_layer("features_dropout").rate)(x)
    outputs = {}
    for head in ("age", "gender"):
        hidden = keras_model.get_layer(f"{head}_hidden")
        h = layers.Dense(hidden.units, activation="relu", name=f"{head}_hidden")(x)
        h = layers.Dropout(keras_model.get_layer(f"{head}_dropout").rate)(h)
        out = keras_model.get_layer(head)
        outputs[head] = layers.Dense(out.units, activation=out.activation, name=head)(h)
    heads = keras.Model(features, outputs)
    if not fresh:
        if pooling == "flat":
            raise ValueError("flat pooling changes the heads' input: use --fresh")
        for name in ("age_hidden", "age", "gender_hidden", "gender"):
            heads.get_layer(name).set_weights(keras_model.get_layer(name).get_weights())
    return heads


def head_metrics(heads, faces: dict) -> dict:
    """{dataset: MAE, gender accuracy, band biases} on cached faces, and the combined score the
    training monitors (age MAE + 20 x gender error over every dataset together)."""
    from agegender.edge.postprocess import age_mean_std
    from agegender.train import metrics as M

    out, all_err, all_right = {}, [], []
    for name, arrays in faces.items():
        pred = heads.predict(arrays["features"].astype(np.float32), batch_size=1024, verbose=0)
        ages = age_mean_std(pred["age"])[0]  # decoded as the runtime decodes
        right = (pred["gender"][:, 0] >= 0.5) == (arrays["genders"] >= 0.5)
        bands = M.mae_by_band(arrays["ages"], ages)
        out[name] = {"mae": M.mae(arrays["ages"], ages), "gender": float(right.mean()),
                     "bias": M.band_biases(bands)}
        all_err.append(np.abs(ages - arrays["ages"]))
        all_right.append(right)
    out["score"] = float(np.concatenate(all_err).mean() + 20 * (1 - np.concatenate(all_right).mean()))
    return out


def fit_heads(keras_model, train: dict, val: dict, age_balance: float, dataset_weights: dict,
              fresh: bool, epochs: int, lr: float, draws: int, seed: int, pooling: str = "gap"):
    """Heads fitted on the training features, drawn as the trainer draws faces (dataset shares,
    age balance), each draw the face or its mirror image; returns the heads and per-epoch scores."""
    import keras

    from agegender.train.losses import AgeDistributionLoss, GenderLoss
    from agegender.train.sampling import sampling_probabilities

    names = sorted(train)
    datasets = np.concatenate([[n] * len(train[n]["ages"]) for n in names])
    ages = np.concatenate([train[n]["ages"] for n in names])
    genders = np.concatenate([train[n]["genders"] for n in names])
    faces = np.concatenate([train[n]["features"] for n in names])
    mirrored = np.concatenate([train[n]["mirrored"] for n in names])
    probs = sampling_probabilities(datasets, ages, dataset_weights, age_balance)
    heads = head_model(keras_model, fresh, seed, faces.shape[1:], pooling)
    heads.compile(optimizer=keras.optimizers.Adam(lr),
                  loss={"age": AgeDistributionLoss(), "gender": GenderLoss()})
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(epochs):
        idx = rng.choice(len(ages), size=draws, p=probs)
        flip = rng.random(draws) < 0.5
        flip = flip.reshape((-1,) + (1,) * (faces.ndim - 1))
        x = np.where(flip, mirrored[idx], faces[idx]).astype(np.float32)
        heads.fit(x, {"age": ages[idx][:, None], "gender": genders[idx][:, None]},
                  batch_size=64, epochs=1, verbose=0)
        scores.append(head_metrics(heads, val)["score"])
    return heads, scores


def run_fits(args) -> None:
    from agegender.train import metrics as M
    from agegender.train.model_io import load_model

    keras_model = load_model(args.model, compile=False)
    train, val = load_split(args.features, "train"), load_split(args.features, "val")
    weights = {"utkface": 0.6, "aaf": 0.4}
    weights.update({k: float(v) for k, v in (w.split("=", 1) for w in args.data_weight)})
    names = sorted(val)
    bands = ", ".join(M.band_name(lo, hi) for lo, hi in M.AGE_BANDS)
    lines = ["| heads | val score | " + " | ".join(f"{n} MAE / gender | {n} sum \\|bias\\| | {n} bias ({bands})"
                                                  for n in names) + " |",
             "|---|---:|" + "---:|---:|---|" * len(names)]

    def row(label: str, result: dict) -> str:
        cells = [f"{result[n]['mae']:.2f} / {result[n]['gender']:.1%} | {sum(abs(b) for b in result[n]['bias']):.1f} | "
                 + " ".join(f"{b:+.2f}" for b in result[n]["bias"]) for n in names]
        return f"| {label} | {result['score']:.3f} | " + " | ".join(cells) + " |"

    feature_shape = next(iter(val.values()))["features"].shape[1:]
    own = head_model(keras_model, False, args.seed, feature_shape)
    lines.append(row("the model's own", head_metrics(own, val)))
    # the same heads on the faces they were trained on: is the pull toward the middle there too?
    lines.append(row("the model's own, on the training splits (for comparison, not validation)",
                     head_metrics(own, train)))
    log.info("\n".join(lines[-2:]))
    start = "fresh" if args.fresh else "the model's"
    poolings = args.pooling.split(",") if len(feature_shape) == 3 else ["gap"]
    for pooling, power in ((p, float(b)) for p in poolings for b in args.age_balance.split(",")):
        heads, scores = fit_heads(keras_model, train, val, power, weights, args.fresh, args.epochs, args.lr,
                                  args.draws, args.seed, pooling)
        log.info("%s, age balance %.2f: validation score by epoch %s", pooling, power,
                 " ".join(f"{s:.3f}" for s in scores))
        pooled = f"{pooling} pooling, " if len(feature_shape) == 3 else ""
        lines.append(row(f"refit from {start}, {pooled}age balance {power:g}, {args.epochs} epochs at {args.lr:g}",
                         head_metrics(heads, val)))
        log.info(lines[-1])
    show_and_save("\n".join(lines) + "\n", args.markdown)


def distribution_median(probs: np.ndarray) -> np.ndarray:
    """The age where each distribution's cumulative probability crosses 0.5, interpolated within its bin
    (bin k holds the ages k - 0.5 to k + 0.5)."""
    cdf = np.cumsum(probs, axis=1)
    upper = np.clip((cdf < 0.5).sum(axis=1), 1, probs.shape[1] - 1)
    rows = np.arange(len(probs))
    below, at = cdf[rows, upper - 1], cdf[rows, upper]
    return upper - 0.5 + (0.5 - below) / np.maximum(at - below, 1e-9)


def run_decodes(args) -> None:
    """The model's own heads on the validation features, the age read three ways."""
    from agegender.edge.postprocess import age_mean_std
    from agegender.train import metrics as M
    from agegender.train.model_io import load_model

    keras_model = load_model(args.model, compile=False)
    val = load_split(args.features, "val")
    heads = head_model(keras_model, False, 0, next(iter(val.values()))["features"].shape[1:])
    bands = ", ".join(M.band_name(lo, hi) for lo, hi in M.AGE_BANDS)
    lines = [f"| dataset (val) | age read off | MAE | bias ({bands}) | sum \\|bias\\| |", "|---|---|---:|---|---:|"]
    for name, arrays in val.items():
        probs = heads.predict(arrays["features"].astype(np.float32), batch_size=1024, verbose=0)["age"]
        for label, ages in (("mean (the runtime's)", age_mean_std(probs)[0]),
                            ("median", distribution_median(probs)),
                            ("peak", probs.argmax(axis=1).astype(np.float64))):
            bias = M.band_biases(M.mae_by_band(arrays["ages"], ages))
            lines.append(f"| {name} | {label} | {M.mae(arrays['ages'], ages):.2f} | "
                         + " ".join(f"{b:+.2f}" for b in bias) + f" | {sum(abs(b) for b in bias):.1f} |")
    show_and_save("\n".join(lines) + "\n", args.markdown)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    feats = sub.add_parser("features", help="cache the backbone's pooled features of every split")
    feats.add_argument("--model", required=True, help=".keras model whose backbone gives the features")
    feats.add_argument("--data", action="append", required=True, help="a dataset, as agegender train takes it")
    feats.add_argument("--align-detector", required=True, help="YuNet .onnx (crops re-aligned by their landmarks)")
    feats.add_argument("--out", required=True, help="folder for NAME_SPLIT.npz")
    feats.add_argument("--spatial", action="store_true",
                       help="cache the backbone's feature map before the pooling (4x4x1280 at 128 px), float16")
    fit = sub.add_parser("fit", help="refit the heads with each setting; a table of validation figures")
    fit.add_argument("--model", required=True, help="the .keras model the features came from")
    fit.add_argument("--features", required=True, help="the features step's --out folder")
    fit.add_argument("--age-balance", default="0.5", help="age balance powers to try, comma-separated")
    fit.add_argument("--data-weight", action="append", default=[], metavar="NAME=W",
                     help="a dataset's share of the draws (default: the shipped recipe's utkface=0.6, aaf=0.4)")
    fit.add_argument("--fresh", action="store_true", help="start the heads from random weights, not the model's")
    fit.add_argument("--epochs", type=int, default=10)
    fit.add_argument("--lr", type=float, default=1e-4)
    fit.add_argument("--draws", type=int, default=22810, help="faces drawn an epoch (the trainer's)")
    fit.add_argument("--pooling", default="gap,gdc",
                     help="on spatial features: gap (the model's average), gdc (learned per-position weights), "
                          "flat (channels reduced, every position kept; with --fresh)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--markdown", help="write the table here too")
    decode = sub.add_parser("decode", help="the model's own heads, the age read off the mean, median or peak")
    decode.add_argument("--model", required=True, help="the .keras model the (pooled) features came from")
    decode.add_argument("--features", required=True, help="the features step's --out folder")
    decode.add_argument("--markdown", help="write the table here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "features":
        cache_features(args.model, args.data, args.align_detector, args.out, spatial=args.spatial)
    elif args.command == "decode":
        run_decodes(args)
    else:
        run_fits(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
