"""Does the camera path see faces as the training crops did? Two checks, one report.

1. Aligned path vs crops: UTKFace test-split crops pasted into 640x480 frames at random
   positions, scales (0.6-1.8x) and small rotations (±12°); each frame goes through the
   full runtime (YuNet -> landmark alignment -> model) and the age is compared with the
   age the same model gives for the original crop (``--aligned``).
2. Real photos: every face YuNet finds in the shared photos, with its estimate.

    python benchmarks/edge_checks.py --data $AGEGENDER_DATA --photos PHOTOS_DIR \
        --detector-model face_detection_yunet_2023mar.onnx [--n 300] [--model M]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

import cv2
import numpy as np

from agegender.edge.estimator import Estimator
from agegender.edge.images import read_canonical, read_image
from agegender.train import data as data_mod


def paste(crop, rng, frame_size=(480, 640)):
    h, w = frame_size
    scale = rng.uniform(0.6, 1.8)
    angle = rng.uniform(-12, 12)
    half = 100 * scale
    center = (rng.uniform(half, w - half), rng.uniform(half, h - half))
    matrix = cv2.getRotationMatrix2D((100, 100), angle, scale)
    matrix[:, 2] += np.array(center) - 100
    frame = np.full((h, w, 3), int(rng.integers(40, 200)), np.uint8)
    warped = cv2.warpAffine(crop, matrix, (w, h))
    mask = cv2.warpAffine(np.full((200, 200), 255, np.uint8), matrix, (w, h)) > 0
    frame[mask] = warped[mask]
    return frame


def aligned_vs_crops(estimator, records, seed=0):
    rng = np.random.default_rng(seed)
    crop_ages, frame_ages, crop_gender, frame_gender, true_ages, missed = [], [], [], [], [], 0
    for rec in records:
        crop = read_canonical(rec.path)
        ref = estimator.predict(crop, aligned=True)[0]
        faces = estimator.predict(paste(crop, rng))
        if len(faces) != 1:
            missed += 1
            continue
        crop_ages.append(ref.age)
        frame_ages.append(faces[0].age)
        crop_gender.append(ref.gender)
        frame_gender.append(faces[0].gender)
        true_ages.append(rec.age)
    crop_ages, frame_ages, true_ages = map(np.array, (crop_ages, frame_ages, true_ages))
    return {
        "frames": len(records), "one_face_found": len(crop_ages), "missed_or_extra": missed,
        "mae_between_paths": float(np.mean(np.abs(crop_ages - frame_ages))),
        "median_abs_diff": float(np.median(np.abs(crop_ages - frame_ages))),
        "gender_agreement": float(np.mean(np.array(crop_gender) == np.array(frame_gender))),
        "mae_vs_truth_crops": float(np.mean(np.abs(crop_ages - true_ages))),
        "mae_vs_truth_frames": float(np.mean(np.abs(frame_ages - true_ages))),
    }


def realign_self(estimator, records):
    """Each crop re-aligned onto itself (its own landmarks -> template): the model's sensitivity
    to the per-face alignment differences alone, with no pasting and no background."""
    from agegender.edge.contract import crop_to_input, face_input

    diffs, agree = [], []
    for rec in records:
        crop = read_canonical(rec.path)
        faces = estimator.detector.detect(crop)
        if len(faces) != 1:
            continue
        ref = estimator.infer(crop_to_input(crop, estimator.contract.size)[None])[0]
        again = estimator.infer(face_input(crop, estimator.contract, landmarks=faces[0].landmarks)[None])[0]
        diffs.append(abs(again.age - ref.age))
        agree.append(again.gender == ref.gender)
    return {"crops": len(diffs), "mae": float(np.mean(diffs)), "gender_agreement": float(np.mean(agree))}


def photos_report(estimator, photos):
    expected = {}
    if os.path.isfile(os.path.join(photos, "faces.csv")):
        expected = {r["file"]: int(r["faces"]) for r in csv.DictReader(open(os.path.join(photos, "faces.csv")))}
    rows = []
    for name in sorted(expected or os.listdir(photos)):
        faces = estimator.predict(read_image(os.path.join(photos, name)))
        rows.append((name, expected.get(name), faces))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--photos", required=True)
    p.add_argument("--detector-model", required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--n", type=int, default=300)
    args = p.parse_args(argv)
    estimator = Estimator(model=args.model, detector=args.detector_model, threads=1)
    records, _ = data_mod.read_dataset(args.data, check_content=False)
    test = data_mod.select_split(records, "test")
    sample = data_mod.stratified_sample(test, args.n, seed=1)
    result = aligned_vs_crops(estimator, sample)
    print(f"## Aligned path vs original crops ({os.path.basename(estimator.model_path)})\n")
    print(f"{result['frames']} test-split crops pasted into 640x480 frames (scale 0.6-1.8, rotation ±12°); "
          f"one face found in {result['one_face_found']}.\n")
    print("| metric | value |\n|---|---:|")
    for key in ("mae_between_paths", "median_abs_diff", "gender_agreement", "mae_vs_truth_crops",
                "mae_vs_truth_frames"):
        print(f"| {key.replace('_', ' ')} | {result[key]:.3f} |")
    own = realign_self(estimator, sample)
    print(f"\nEach crop re-aligned onto itself ({own['crops']} crops, no pasting): age MAE between the "
          f"two {own['mae']:.2f}, gender agreement {own['gender_agreement']:.3f}.")
    rows = photos_report(estimator, args.photos)
    found = sum(min(len(f), e or 0) for _, e, f in rows)
    extra = sum(max(0, len(f) - (e or 0)) for _, e, f in rows)
    print(f"\n## Real photos\n\n{found} of {sum(e or 0 for _, e, _ in rows)} faces found, {extra} false faces.\n")
    print("| photo | expected | found | estimates |\n|---|---:|---:|---|")
    for name, expected, faces in rows:
        print(f"| {name} | {expected} | {len(faces)} | " + "; ".join(f.label() for f in faces) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
