"""Measure the crop template from the training images themselves.

Runs the face detector on UTKFace training crops and averages where the 5
landmarks sit (as fractions of the canonical 200x200 crop), and how the detector's
box relates to the crop (for the box-based fallback). The result is the input
contract's ``template``/``box_margin``/``box_shift``; it is stored in every model
card and used by the edge runtime to warp camera faces to look like training crops.

    python -m agegender.train.template --data DIR --detector-model yunet.onnx [--n 2000]
"""
from __future__ import annotations

import argparse
import json
import logging

import numpy as np

from agegender.edge.contract import CANONICAL_SIZE
from agegender.edge.detectors import YuNetDetector
from agegender.edge.images import read_canonical
from agegender.train import data as data_mod

log = logging.getLogger(__name__)


def measure_template(records, detector: YuNetDetector, n: int = 2000, seed: int = 0) -> dict:
    """Median landmark positions and box geometry over up to n crops with one clear face."""
    rng = np.random.default_rng(seed)
    chosen = [records[i] for i in rng.permutation(len(records))[:n]]
    points, margins, shifts = [], [], []
    for rec in chosen:
        crop = read_canonical(rec.path)
        faces = [f for f in detector.detect(crop) if f.score > 0.8]
        if len(faces) != 1:
            continue
        face = faces[0]
        points.append(face.landmarks / CANONICAL_SIZE)
        x, y, w, h = face.box
        margins.append(CANONICAL_SIZE / max(w, h))
        shifts.append((CANONICAL_SIZE / 2 - (y + h / 2)) / h)
    if len(points) < 20:
        raise RuntimeError(f"only {len(points)} faces found in {len(chosen)} crops: cannot measure a template")
    points = np.stack(points)
    return {
        "template": np.median(points, axis=0).round(4).tolist(),
        "template_spread": points.std(axis=0).round(4).tolist(),
        "box_margin": round(float(np.median(margins)), 3),
        "box_shift": round(float(np.median(shifts)), 3),
        "faces_used": len(points),
        "crops_tried": len(chosen),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--detector-model", required=True)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    records, _ = data_mod.read_dataset(args.data, check_content=False)
    records = data_mod.select_split(records, "train")
    print(json.dumps(measure_template(records, YuNetDetector(args.detector_model, max_side=400), args.n), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
