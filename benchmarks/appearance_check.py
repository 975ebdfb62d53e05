"""How well the look descriptor (agegender.edge.appearance) tells faces apart.

Each of N UTKFace test-split faces (a seeded stratified sample) is pasted three times into a
640x480 frame at a random place and size (110-200 px, sensor noise), found by YuNet and
described as video mode describes it. Prints the similarity of each face to itself (first
paste against the other two) and of different faces (first pastes, every pair): the re-id
threshold REID_SIMILARITY must sit between.

    python benchmarks/appearance_check.py --data $AGEGENDER_DATA --detector-model $AGEGENDER_DETECTOR --n 60
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

from agegender.edge.appearance import REID_SIMILARITY, face_descriptor
from agegender.edge.estimator import Estimator
from agegender.edge.images import read_canonical
from agegender.train import data as data_mod


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("AGEGENDER_DATA"), help="UTKFace folder (default $AGEGENDER_DATA)")
    p.add_argument("--detector-model", required=True)
    p.add_argument("--n", type=int, default=60, help="faces (default 60)")
    args = p.parse_args(argv)
    records, _ = data_mod.read_dataset(args.data, check_content=False)
    test = data_mod.select_split(records, "test")
    estimator = Estimator(detector=args.detector_model, threads=1)
    rng = np.random.default_rng(0)
    looks = []
    for record in data_mod.stratified_sample(test, args.n, seed=9):
        crop, views = read_canonical(record.path), []
        for _ in range(3):
            side = int(rng.integers(110, 200))
            frame = np.full((480, 640, 3), 110, np.uint8)
            x, y = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
            frame[y:y + side, x:x + side] = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
            frame = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
            found = estimator.detect(frame)
            if len(found) == 1:
                views.append(face_descriptor(frame, estimator.contract, found[0].landmarks, found[0].box))
        if len(views) == 3:
            looks.append(views)
    same = np.array([float(v[0] @ v[k]) for v in looks for k in (1, 2)])
    different = np.array([float(a[0] @ b[0]) for i, a in enumerate(looks) for b in looks[i + 1:]])
    print(f"{len(looks)} faces found three times each")
    print(f"same face:       min {same.min():.3f}, 1st percentile {np.percentile(same, 1):.3f}, "
          f"median {np.median(same):.3f} ({len(same)} pairs)")
    print(f"different faces: max {different.max():.3f}, 99th percentile {np.percentile(different, 99):.3f}, "
          f"median {np.median(different):.3f} ({len(different)} pairs)")
    print(f"REID_SIMILARITY {REID_SIMILARITY}: same-face pairs below it {np.mean(same < REID_SIMILARITY):.1%}, "
          f"different-face pairs at or above it {np.mean(different >= REID_SIMILARITY):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
