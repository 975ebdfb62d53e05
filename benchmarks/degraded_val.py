r"""Validation faces as cheap cameras see them: what the camera-like augmentation buys.

Clean validation crops cannot reward robustness to degradations they do not contain (the
ablation in ``benchmarks/accuracy.md`` found no augmentation family paying on them). Here each
model sees the same validation faces under fixed, seeded degradations, one at a time:

- **seen**: each family of ``train/augment.py`` forced on (what a model trained with it has met);
- **held out**: degradations no training code makes (WebP compression, defocus by a disk kernel,
  pixelation, a dark noisy frame brightened, a tungsten colour cast), to see whether the
  robustness carries over to damage the model never saw;
- **webcam**: a chain of both kinds, a small face from a cheap camera.

    python benchmarks/degraded_val.py --model shipped=models/agegender_mnv2_128.keras \
        --model first=FIRST.keras [--model LABEL=MODEL ...] --data $S/utkface --data $S/aaf/labels.csv \
        --align-detector YUNET --n 400 --json benchmarks/degraded_val.json --markdown benchmarks/degraded_val.md
    python benchmarks/degraded_val.py --redraw benchmarks/degraded_val.json --markdown benchmarks/degraded_val.md

The validation splits by default (choices are made there); ``--split test`` reports a model already
chosen. The same stratified sample of ``--n`` faces per dataset for every model; one degradation
draw per face and condition, the same for every model.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
import zlib

import cv2
import numpy as np

from agegender.train import augment as aug
from tables import show_and_save

log = logging.getLogger("degraded_val")


# --- held-out degradations: pure functions, RGB uint8 in and out -----------------------------
def webp(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    quality = int(rng.integers(5, 26))
    ok, data = cv2.imencode(".webp", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else image


def defocus(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    radius = max(1, int(round(rng.uniform(1.5, 3.0) * image.shape[0] / 128)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)).astype(np.float32)
    return cv2.filter2D(image, -1, kernel / kernel.sum())


def pixelate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    side = int(rng.integers(24, 41))
    small = cv2.resize(image, (side, max(1, round(side * h / w))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def low_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark exposure (a quarter to a sixth of the light) brightened back: noise grows with the gain."""
    gain = rng.uniform(4.0, 6.0)
    dark = image.astype(np.float32) / gain
    dark = rng.poisson(np.maximum(dark, 0) * 2.0) / 2.0 + rng.normal(0, 1.5, dark.shape)
    return np.clip(np.round(dark) * gain, 0, 255).astype(np.uint8)


def tungsten(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An uncorrected indoor cast: red up, blue down (RGB)."""
    strength = rng.uniform(0.25, 0.4)
    gains = np.array([1 + strength * 0.6, 1.0, 1 - strength], np.float32)
    return np.clip(image.astype(np.float32) * gains, 0, 255).astype(np.uint8)


def webcam(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small face from a cheap camera: 40-60 px, sensor noise, a colour cast, JPEG."""
    image = aug.low_resolution(image, rng, sides=(40, 60))
    image = aug.sensor_noise(image, rng)
    image = aug.white_balance_exposure(image, rng)
    return aug.jpeg(image, rng)


# (name, kind, function); every function is applied to the model input, after alignment
CONDITIONS = (
    ("clean", "-", None),
    ("colour", "seen", aug.white_balance_exposure),
    ("grey", "seen", aug.grey_or_sepia),
    ("lowres", "seen", aug.low_resolution),
    ("blur", "seen", aug.blur),
    ("noise", "seen", aug.sensor_noise),
    ("jpeg", "seen", aug.jpeg),
    ("webp", "held out", webp),
    ("defocus", "held out", defocus),
    ("pixelate", "held out", pixelate),
    ("low light", "held out", low_light),
    ("tungsten", "held out", tungsten),
    ("webcam", "chain", webcam),
)


def degrade(inputs: np.ndarray, condition: str, keys: list[str]) -> np.ndarray:
    """Each input degraded by ``condition``, its draw seeded by (condition, its key): every model
    sees the same damage."""
    fn = {name: f for name, _, f in CONDITIONS}[condition]
    if fn is None:
        return inputs
    return np.stack([fn(x, np.random.default_rng(zlib.crc32(f"{condition}/{key}".encode())))
                     for x, key in zip(inputs, keys)])


# --- scoring -----------------------------------------------------------------------------------
def score_model(path: str, sets: list, conditions: list[str]) -> dict:
    """{dataset: {condition: {"mae", "gender"}}} for one model, decoded and scored as ``agegender
    evaluate`` does (``compute_metrics``)."""
    from agegender.train.evaluate import compute_metrics, model_inputs, predictions_from
    from agegender.train.keras_backend import open_any_model

    model = open_any_model(path)
    out = {}
    for name, records, landmarks in sets:
        clean = model_inputs(model, records, landmarks)
        keys = [r.name for r in records]
        out[name] = {}
        for condition in conditions:
            metrics = compute_metrics(predictions_from(records, model.run(degrade(clean, condition, keys), 64)))
            out[name][condition] = {"mae": metrics["age_mae"], "gender": metrics["gender"]["accuracy"]}
    return out


def markdown(results: dict, conditions: list[str], split: str) -> str:
    kinds = {name: kind for name, kind, _ in CONDITIONS}
    lines = []
    datasets = sorted(next(iter(results.values())))
    for dataset in datasets:
        lines += [f"**{dataset} {split}** (age MAE / gender accuracy; mean of the degraded conditions last)", "",
                  "| model | " + " | ".join(f"{c} ({kinds[c]})" if kinds[c] != "-" else c for c in conditions)
                  + " | degraded mean |",
                  "|---|" + "---|" * (len(conditions) + 1)]
        for label, by_dataset in results.items():
            row = by_dataset[dataset]
            degraded = [row[c] for c in conditions if c != "clean"]
            mean = (f"{np.mean([r['mae'] for r in degraded]):.2f} / {np.mean([r['gender'] for r in degraded]):.1%}"
                    if degraded else "-")
            lines.append(f"| {label} | " + " | ".join(f"{row[c]['mae']:.2f} / {row[c]['gender']:.1%}"
                                                   for c in conditions) + f" | {mean} |")
        lines.append("")
    lines += ["**What the damage costs** (mean over the conditions of each kind: age MAE added to the clean MAE, "
              "gender accuracy points lost)", "",
              "| model | dataset | clean MAE / gender | seen: +MAE / -points | held out: +MAE / -points "
              "| webcam: +MAE / -points |", "|---|---|---|---|---|---|"]
    for label, by_dataset in results.items():
        for dataset in datasets:
            row = by_dataset[dataset]
            cells = []
            for kind in ("seen", "held out", "chain"):
                names = [c for c in conditions if kinds[c] == kind]
                if not names or "clean" not in row:
                    cells.append("-")
                    continue
                cost = damage_cost(row, names)
                cells.append(f"{cost['mae']:+.2f} / {cost['gender_points']:.1f}")
            clean = row.get("clean")
            lines.append(f"| {label} | {dataset} | "
                         + (f"{clean['mae']:.2f} / {clean['gender']:.1%}" if clean else "-") + " | "
                         + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def damage_cost(row: dict, conditions: list[str]) -> dict:
    """Mean over ``conditions`` of the MAE added to the clean MAE and the gender points lost."""
    clean = row["clean"]
    return {"mae": float(np.mean([row[c]["mae"] - clean["mae"] for c in conditions])),
            "gender_points": float(np.mean([100 * (clean["gender"] - row[c]["gender"]) for c in conditions]))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                        help="a model to score (.keras, .tflite or .onnx with its card); repeat to compare")
    parser.add_argument("--data", action="append", default=[], help="a dataset, as agegender evaluate takes it")
    parser.add_argument("--align-detector", help="YuNet .onnx: crops re-aligned by their landmarks")
    parser.add_argument("--split", default="val", choices=["val", "test"],
                        help="val (default) to compare models and recipes; test only to report a model already chosen")
    parser.add_argument("--n", type=int, default=625, help="faces per dataset, stratified over ages and genders")
    parser.add_argument("--conditions", default=",".join(c for c, _, _ in CONDITIONS),
                        help="comma-separated subset of: " + ", ".join(c for c, _, _ in CONDITIONS))
    parser.add_argument("--markdown", help="write the tables here")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--redraw", metavar="JSON", help="only draw the tables again from an earlier --json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from agegender.train import data as data_mod
    from agegender.train.evaluate import split_with_landmarks

    if args.redraw:
        with open(args.redraw) as f:
            saved = json.load(f)
        results = saved["results"]
        show_and_save(markdown(results, list(next(iter(next(iter(results.values())).values()))), saved["split"]),
                      args.markdown)
        return 0
    if not (args.model and args.data and args.align_detector):
        parser.error("--model, --data and --align-detector are needed (or --redraw JSON)")
    known = [c for c, _, _ in CONDITIONS]
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in known]
    if unknown:
        parser.error(f"unknown condition(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    sets = []
    for source in data_mod.data_sources(args.data, None):
        records, landmarks = split_with_landmarks(source, args.split, args.align_detector)
        sets.append((source.name, data_mod.stratified_sample(records, args.n, seed=0), landmarks))
    results = {}
    for spec in args.model:
        label, _, path = spec.rpartition("=") if "=" in spec else (spec, "", spec)
        started = time.time()
        results[label] = score_model(path, sets, conditions)
        log.info("%s: %.0f s", label, time.time() - started)
    show_and_save(markdown(results, conditions, args.split), args.markdown)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"split": args.split, "n_per_dataset": args.n, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
