"""Measure how the Haar cascade's boxes relate to YuNet's (the fallback detector's constants).

The runtime's box-based crop (contract ``box_margin``/``box_shift``) was measured with
YuNet boxes. When YuNet is missing and the Haar cascade stands in, its boxes are first
mapped to YuNet's geometry with ``HaarDetector.to_yunet_scale`` and ``to_yunet_shift``.
This script reproduces those two numbers: on every face both detectors find in a folder
of photos (matched by IoU), the median of YuNet side / Haar side and of the vertical
offset of the centres in Haar box heights.

    python benchmarks/haar_constants.py --photos PHOTOS_DIR --detector-model yunet.onnx
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from agegender.edge.detectors import HaarDetector, YuNetDetector
from agegender.edge.images import list_images, read_image
from agegender.edge.tracker import iou


def raw_haar_boxes(haar: HaarDetector, image) -> list:
    """Haar boxes as the cascade gives them (undo the mapping to YuNet geometry)."""
    boxes = []
    for d in haar.detect(image):
        x, y, w, h = d.box
        side = w / haar.to_yunet_scale
        cx, cy = x + w / 2, y + h / 2 - haar.to_yunet_shift * side
        boxes.append((cx - side / 2, cy - side / 2, side, side))
    return boxes


def measure(photos: str, detector_model: str, min_iou: float = 0.4) -> dict:
    yunet, haar = YuNetDetector(detector_model), HaarDetector()
    scales, shifts = [], []
    for path in list_images(photos):
        image = read_image(path)
        haar_boxes = raw_haar_boxes(haar, image)
        for face in yunet.detect(image):
            if not haar_boxes:
                break
            best = max(haar_boxes, key=lambda b: iou(b, face.box))
            if iou(best, face.box) < min_iou:
                continue
            scales.append(max(face.box[2], face.box[3]) / best[2])
            shifts.append(((face.box[1] + face.box[3] / 2) - (best[1] + best[3] / 2)) / best[3])
    if not scales:
        raise SystemExit("no face found by both detectors")
    return {"faces": len(scales), "to_yunet_scale": float(np.median(scales)),
            "to_yunet_shift": float(np.median(shifts)), "scale_spread": float(np.std(scales)),
            "current": (HaarDetector.to_yunet_scale, HaarDetector.to_yunet_shift)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", required=True)
    p.add_argument("--detector-model", required=True)
    args = p.parse_args(argv)
    result = measure(args.photos, args.detector_model)
    print(f"{result['faces']} faces found by both detectors in {os.path.abspath(args.photos)}")
    print(f"to_yunet_scale = {result['to_yunet_scale']:.3f} (spread {result['scale_spread']:.3f}); "
          f"to_yunet_shift = {result['to_yunet_shift']:.3f}; in the code: {result['current']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
