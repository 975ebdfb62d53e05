r"""Does the camera path see faces as the training crops did? Two checks, one report.

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


def paste(crop, rng, frame_size=(480, 640), max_rotation: float = 12.0, context: str = "flat"):
    """(frame, scale): the crop pasted at a random place, scale (0.6-1.8) and rotation
    (±max_rotation°) on a plain background; with context="mirror", the crop is first
    surrounded by 60 px of its own mirrored border, so the face has surroundings, as in a photo."""
    h, w = frame_size
    scale = rng.uniform(0.6, 1.8)
    angle = rng.uniform(-max_rotation, max_rotation)
    pad = 60 if context == "mirror" else 0
    if pad:
        crop = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    side = crop.shape[0]
    half = 100 * scale
    center = (rng.uniform(half, w - half), rng.uniform(half, h - half))
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
    matrix[:, 2] += np.array(center) - side / 2
    frame = np.full((h, w, 3), int(rng.integers(40, 200)), np.uint8)
    warped = cv2.warpAffine(crop, matrix, (w, h))
    mask = cv2.warpAffine(np.full((side, side), 255, np.uint8), matrix, (w, h)) > 0
    frame[mask] = warped[mask]
    return frame, scale


def reference(estimator, crop, realign: bool):
    """The model's answer for the crop itself: as given (`predict --aligned`), or re-aligned by
    its own landmarks exactly as the model saw its training crops."""
    if realign:
        faces = estimator.predict(crop)
        if len(faces) == 1:
            return faces[0]
    return estimator.model.predict_inputs(estimator.model.preprocess_crop(crop, None)[None])[0]


def aligned_vs_crops(estimator, records, seed=0, realign: bool = False, max_rotation: float = 12.0,
                     context: str = "flat"):
    rng = np.random.default_rng(seed)
    rows, missed = [], 0
    for rec in records:
        crop = read_canonical(rec.path)
        ref = reference(estimator, crop, realign)
        frame, scale = paste(crop, rng, max_rotation=max_rotation, context=context)
        faces = estimator.predict(frame)
        if len(faces) != 1:
            missed += 1
            continue
        rows.append((ref.age, faces[0].age, ref.gender == faces[0].gender, rec.age, scale))
    crop_ages, frame_ages, agree, true_ages, scales = map(np.array, zip(*rows))
    out = {
        "frames": len(records), "one_face_found": len(rows), "missed_or_extra": missed,
        "mae_between_paths": float(np.mean(np.abs(crop_ages - frame_ages))),
        "median_abs_diff": float(np.median(np.abs(crop_ages - frame_ages))),
        "gender_agreement": float(np.mean(agree)),
        "mae_vs_truth_crops": float(np.mean(np.abs(crop_ages - true_ages))),
        "mae_vs_truth_frames": float(np.mean(np.abs(frame_ages - true_ages))),
    }
    for name, lo, hi in (("small faces (0.6-1.0x)", 0.0, 1.0), ("large faces (1.0-1.8x)", 1.0, 9.0)):
        mask = (scales >= lo) & (scales < hi)
        out[f"mae vs truth frames, {name}"] = float(np.mean(np.abs(frame_ages[mask] - true_ages[mask])))
        out[f"mae vs truth crops, {name}"] = float(np.mean(np.abs(crop_ages[mask] - true_ages[mask])))
    return out


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
    p.add_argument("--realign-reference", action="store_true",
                   help="compare with each crop re-aligned by its landmarks (for models trained that way) "
                        "instead of the crop as given")
    p.add_argument("--max-rotation", type=float, default=12.0, help="degrees (default %(default)s)")
    p.add_argument("--context", choices=["flat", "mirror"], default="flat",
                   help="around the pasted crop: the plain frame (flat), or the crop's own mirrored border (mirror)")
    p.add_argument("--detect-size", type=int, default=None, help="detector input side (default: the runtime's, 320)")
    args = p.parse_args(argv)
    estimator = Estimator(model=args.model, detector=args.detector_model, threads=1,
                          detect_max_side=args.detect_size)
    records, _ = data_mod.read_dataset(args.data, check_content=False)
    test = data_mod.select_split(records, "test")
    sample = data_mod.stratified_sample(test, args.n, seed=1)
    result = aligned_vs_crops(estimator, sample, realign=args.realign_reference, max_rotation=args.max_rotation,
                              context=args.context)
    print(f"## Aligned path vs original crops ({os.path.basename(estimator.model_path)})\n")
    print(f"{result['frames']} test-split crops (stratified over ages) pasted into 640x480 frames (scale 0.6-1.8, "
          f"rotation ±{args.max_rotation:g}°, {args.context} surroundings); one face found in {result['one_face_found']}. Reference: each crop "
          + ("re-aligned by its own landmarks (the model's training input)." if args.realign_reference
             else "as given (resized, not re-aligned).") + "\n")
    print("| metric | value |\n|---|---:|")
    for key, value in result.items():
        if isinstance(value, float):
            print(f"| {key.replace('_', ' ')} | {value:.3f} |")
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
