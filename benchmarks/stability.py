r"""How steady is the answer? The same face under small changes a user cannot see.

For every face of the shared photos, and for test faces pasted into 640x480 frames (with
their own mirrored surroundings, at random place, scale 0.6-1.8 and rotation ±12°), the
runtime is run

* with the detector at 160, 240, 320, 480 and 640 px (its landmarks move a little), and
* at the default 320 px with the 5 landmarks jittered by Gaussian noise of ``--jitter`` x
  the eye distance (``--draws`` times),

and per face we record the spread (standard deviation) of the age over all those runs and
whether the gender call flips; for pasted faces also the error of the 320 px run against the
face's labels (the still path's accuracy). Faces are matched across runs by box overlap
(IoU >= 0.5). With ``--second-detect-size PX`` every run also detects at PX and averages each
face's landmarks over the two passes (``TwoScaleDetector``, as ``predict --second-detect-size``);
with ``--refine-landmarks`` every run finds each face's landmarks again in its canonical crop, as
``predict`` does by default (the jitter then moves the refined landmarks), ``--refine-passes N``
times. Flips are also counted by cause: across the detector sizes, and across the jitter draws
(with the 320 px run).
The README sample (the astronaut) is listed on its own: its age and gender at every size.

    python benchmarks/stability.py --data $AGEGENDER_DATA --data $AAF/labels.csv --photos PHOTOS \
        --detector-model face_detection_yunet_2023mar.onnx [--model M] [--flip] [--views N] [--n 300] \
        [--second-detect-size 640] [--refine-landmarks [--refine-passes N]] --json benchmarks/stability/NAME.json \
        --markdown benchmarks/stability/NAME.md
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from edge_checks import paste  # noqa: E402  (the same pasting as the edge checks)

from agegender.edge.cli_args import alignment_views, positive_int  # noqa: E402
from agegender.edge.detectors import TwoScaleDetector, YuNetDetector  # noqa: E402
from agegender.edge.benchmark import write_json  # noqa: E402
from agegender.edge.estimator import Estimator, averaging_label  # noqa: E402
from agegender.edge.images import list_images, read_canonical, read_image  # noqa: E402
from agegender.edge.tracker import iou  # noqa: E402
from agegender.train import data as data_mod  # noqa: E402

SIZES = (160, 240, 320, 480, 640)
REFERENCE_SIZE = 320


def answers(estimator: Estimator, image, detections) -> list:
    """(box, age, is_female, pose) for detections, through the runtime's own alignment, model and quality."""
    return [(f.box, f.age, f.female_prob >= 0.5, f.quality.pose if f.quality else None)
            for f in estimator.estimate(image, detections)]


def runs_of(image, estimator: Estimator, detectors: dict, rng, jitter: float, draws: int) -> list:
    """Every run's answers for one picture: one list per detector size, then one per jitter draw."""
    found = {s: estimator.refine(image, estimator.select(detectors[s].detect(image))) for s in SIZES}
    runs = [answers(estimator, image, found[s]) for s in SIZES]
    base = found[REFERENCE_SIZE]
    for _ in range(draws):
        moved = []
        for d in base:
            eye = float(np.hypot(*(d.landmarks[1] - d.landmarks[0])))
            noise = rng.normal(0.0, jitter * eye, size=d.landmarks.shape).astype(np.float32)
            moved.append(type(d)(d.box, d.score, d.landmarks + noise))
        runs.append(answers(estimator, image, moved))
    return runs


def per_face(runs: list, reference_index: int) -> list:
    """For each face of the reference run: age spread, gender flips?, runs found, pose, mean age and
    female share over the runs, and the reference run's own age and gender call."""
    out = []
    for box, age, female, pose in runs[reference_index]:
        ages, genders, by_size, by_jitter = [], [], set(), {female}
        for i, run in enumerate(runs):
            match = max(run, key=lambda a: iou(a[0], box), default=None)
            if match is not None and iou(match[0], box) >= 0.5:
                ages.append(match[1])
                genders.append(match[2])
                (by_size if i < len(SIZES) else by_jitter).add(match[2])
        out.append({"age_std": float(np.std(ages)), "gender_flips": len(set(genders)) > 1, "runs": len(ages),
                    "flips_by_size": len(by_size) > 1, "flips_by_jitter": len(by_jitter) > 1,
                    "pose": pose, "age": float(np.mean(ages)), "female_share": float(np.mean(genders)),
                    "reference_age": float(age), "reference_female": bool(female)})
    return out


def summarise(faces: list) -> dict:
    if not faces:
        return {"faces": 0}
    spreads = np.array([f["age_std"] for f in faces])
    flips = np.array([f["gender_flips"] for f in faces])
    out = {"faces": len(faces), "median_age_spread": float(np.median(spreads)),
           "mean_age_spread": float(np.mean(spreads)), "p90_age_spread": float(np.percentile(spreads, 90)),
           "gender_flip_rate": float(np.mean(flips)), "gender_flips": int(flips.sum()),
           "gender_flips_by_size": int(sum(f["flips_by_size"] for f in faces)),
           "gender_flips_by_jitter": int(sum(f["flips_by_jitter"] for f in faces))}
    true_ages = np.array([f.get("true_age", np.nan) for f in faces], float)
    if np.isfinite(true_ages).all():  # pasted faces: the still path's error, and how many flips are children's
        out["reference_mae"] = float(np.mean(np.abs(np.array([f["reference_age"] for f in faces]) - true_ages)))
        out["reference_gender_accuracy"] = float(np.mean([f["reference_female"] == f["true_female"] for f in faces]))
        for label, mask in (("children", true_ages < 13), ("13_plus", true_ages >= 13)):
            out[f"flips_{label}"] = {"faces": int(mask.sum()), "gender_flips": int(flips[mask].sum())}
    for pose in ("frontal", "turned", "profile"):
        mask = np.array([f["pose"] == pose for f in faces])
        if mask.any():
            out[f"by_pose_{pose}"] = {"faces": int(mask.sum()), "median_age_spread": float(np.median(spreads[mask])),
                                      "gender_flip_rate": float(np.mean(flips[mask]))}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", default=[], help="dataset(s) for pasted test faces")
    parser.add_argument("--photos", default=None, help="folder of real photos (the shared data/photos)")
    parser.add_argument("--detector-model", required=True)
    parser.add_argument("--model", default=None, help="model file (default: the shipped int8 TFLite)")
    parser.add_argument("--flip", action="store_true", help="average each face with its mirror (Estimator(flip=True))")
    parser.add_argument("--views", type=alignment_views, default=1,
                        help="average each face over N alignment views (Estimator(views=N), default %(default)s)")
    parser.add_argument("--second-detect-size", type=positive_int, default=None, metavar="PX",
                        help="also detect at PX and average each face's box and landmarks over the two passes")
    parser.add_argument("--refine-landmarks", action="store_true",
                        help="find each face's landmarks again in its canonical crop (Estimator(refine_landmarks=True), "
                             "as `predict` by default); the jitter moves the refined landmarks")
    parser.add_argument("--refine-passes", type=positive_int, default=1, metavar="N",
                        help="with --refine-landmarks, refine N times, each pass from the last (default %(default)s)")
    parser.add_argument("--n", type=int, default=300, help="pasted faces per dataset (default %(default)s)")
    parser.add_argument("--split", default="test", choices=["val", "test"],
                        help="which split's faces to paste (val for choosing models, test for reports)")
    parser.add_argument("--jitter", type=float, default=0.03, help="landmark noise, x eye distance (default %(default)s)")
    parser.add_argument("--draws", type=int, default=5, help="jitter draws per face (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)

    detectors = {s: YuNetDetector(args.detector_model, max_side=s) for s in SIZES}
    if args.second_detect_size:
        second = YuNetDetector(args.detector_model, max_side=args.second_detect_size)
        detectors = {s: TwoScaleDetector(d, second) if s != args.second_detect_size else d
                     for s, d in detectors.items()}
    model = args.model
    if model and model.endswith(".keras"):  # a training run's model, through the same runtime path
        from agegender.train.keras_backend import open_any_model
        model = open_any_model(model)
    estimator = Estimator(model=model, detector=detectors[REFERENCE_SIZE], threads=1, flip=args.flip,
                          views=args.views, refine_landmarks=args.refine_landmarks,
                          refine_passes=args.refine_passes)
    rng = np.random.default_rng(args.seed)
    ref = SIZES.index(REFERENCE_SIZE)
    report = {"model": os.path.basename(estimator.model_path), "flip": args.flip, "views": args.views,
              "second_detect_size": args.second_detect_size, "refine_landmarks": args.refine_landmarks,
              "refine_passes": args.refine_passes, "sizes": SIZES,
              "jitter": args.jitter, "draws": args.draws, "sets": {}}
    if args.photos:
        faces, sample = [], None
        for path in list_images(args.photos):
            image = read_image(path)
            runs = runs_of(image, estimator, detectors, rng, args.jitter, args.draws)
            found = per_face(runs, ref)
            faces += found
            if os.path.basename(path) == "astronaut.png":
                sample = [{"detect_size": s, "age": round(r[0][1], 1), "gender": "female" if r[0][2] else "male"}
                          for s, r in zip(SIZES, runs) if r]
        report["sets"]["photos"] = summarise(faces)
        report["readme_sample"] = sample
    for item in args.data:
        source = data_mod.DataSource.parse(item)
        records, _ = data_mod.read_source(source, check_content=False)
        records = data_mod.stratified_sample(data_mod.select_source_split(records, args.split, source), args.n,
                                             args.seed)
        faces = []
        for rec in records:
            frame, _ = paste(read_canonical(rec.path), rng, context="mirror")
            faces += [{**face, "true_age": rec.age, "true_female": rec.gender == 1}
                      for face in per_face(runs_of(frame, estimator, detectors, rng, args.jitter, args.draws), ref)[:1]]
        report["sets"][f"{source.name} {args.split}, pasted"] = summarise(faces)
    print(write_json(report, args.json))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(to_markdown(report) + "\n")
    return 0


def to_markdown(report: dict) -> str:
    averaging = averaging_label(report["flip"], report.get("views", 1))
    second = report.get("second_detect_size")
    lines = [f"Stability of `{report['model']}`" + (f" {averaging}" if averaging else "")
             + (f", landmarks averaged with a second detection at {second} px" if second else "")
             + (", landmarks found again in each face's crop" if report.get("refine_landmarks") else "")
             + (f" ({report['refine_passes']} passes)" if report.get("refine_landmarks") and report.get("refine_passes", 1) > 1 else "")
             + f": detector at {'/'.join(map(str, report['sizes']))} px and {report['draws']} landmark jitters "
             f"of {report['jitter']:.0%} of the eye distance.", "",
             "| faces | n | median age spread | p90 spread | gender flips | flips across sizes / jitters "
             f"| flips: ages 0-12 / 13+ | MAE / gender at {REFERENCE_SIZE} px |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in report["sets"].items():
        if s["faces"]:
            by_age = (f"{s['flips_children']['gender_flips']} of {s['flips_children']['faces']} / "
                      f"{s['flips_13_plus']['gender_flips']} of {s['flips_13_plus']['faces']}"
                      if "flips_children" in s else "-")
            by_cause = (f"{s['gender_flips_by_size']} / {s['gender_flips_by_jitter']}"
                        if "gender_flips_by_size" in s else "-")
            accuracy = (f"{s['reference_mae']:.2f} / {s['reference_gender_accuracy']:.1%}"
                        if "reference_mae" in s else "-")
            lines.append(f"| {name} | {s['faces']} | {s['median_age_spread']:.2f} y | {s['p90_age_spread']:.2f} y | "
                         f"{s['gender_flips']} ({s['gender_flip_rate']:.1%}) | {by_cause} | {by_age} | {accuracy} |")
    if report.get("readme_sample"):
        lines += ["", "README sample (astronaut): " + ", ".join(
            f"{r['detect_size']} px: {r['gender']} {r['age']}" for r in report["readme_sample"])]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
