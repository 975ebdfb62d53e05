"""Landmarks of every training crop, found once by the runtime's own face detector and cached.

Training on crops re-aligned exactly as the edge runtime aligns camera faces (detector
landmarks -> similarity transform onto the contract's template) removes the mismatch
between UTKFace's own alignment and ours. The detector runs once per image (about 4 ms
for a 200x200 crop); the result is cached in the user cache, keyed by the dataset folder
and the detector file's checksum, so later runs start at once. Crops where the detector
finds no single clear face get no landmarks and are used as they are.

    python -m agegender.train.landmarks --data DIR --detector-model yunet.onnx
"""
from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import time
from typing import Optional, Sequence

import numpy as np

from agegender.edge.detectors import CROP_DETECT_MAX_SIDE, YuNetDetector, cache_dir, crop_landmarks
from agegender.edge.files import atomic_write_bytes, sha256_file
from agegender.edge.images import read_canonical

log = logging.getLogger(__name__)


def cache_path(data: str, detector_path: str) -> str:
    key = hashlib.sha1(f"{os.path.abspath(data)}|{sha256_file(detector_path)}".encode()).hexdigest()[:16]
    from agegender.train.data import dataset_name_of

    return os.path.join(cache_dir(), "landmarks", f"{dataset_name_of(data)}-{key}.npz")


def detect_landmarks(records: Sequence, detector: YuNetDetector) -> dict[str, np.ndarray]:
    """{record name: (5, 2) float32 landmarks in canonical-crop pixels} for crops with one clear face."""
    found: dict[str, np.ndarray] = {}
    started = time.time()
    for i, rec in enumerate(records, 1):
        points = crop_landmarks(detector, read_canonical(rec.path))
        if points is not None:
            found[rec.name] = points
        if i % 2000 == 0 or i == len(records):
            log.info("landmarks: %d/%d crops (%d with one face), %.0f s", i, len(records), len(found),
                     time.time() - started)
    return found


def load_landmarks(records: Sequence, data: str, detector_path: str,
                   cache: Optional[str] = None) -> dict[str, np.ndarray]:
    """Landmarks for these records, from the cache where present; missing ones are detected and cached."""
    cache = cache or cache_path(data, detector_path)
    known: dict[str, np.ndarray] = {}
    if os.path.isfile(cache):
        with np.load(cache) as saved:
            known = dict(zip(saved["names"].tolist(), saved["points"]))
            tried = set(saved["tried"].tolist())
    else:
        tried = set()
    todo = [r for r in records if r.name not in tried]
    if todo:
        log.info("finding landmarks in %d crops (cached in %s)", len(todo), cache)
        known.update(detect_landmarks(todo, YuNetDetector(detector_path, max_side=CROP_DETECT_MAX_SIDE)))
        tried.update(r.name for r in todo)
        buf = io.BytesIO()
        names = sorted(known)
        np.savez_compressed(buf, names=np.array(names), tried=np.array(sorted(tried)),
                            points=np.stack([known[n] for n in names]) if names else np.zeros((0, 5, 2)))
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        atomic_write_bytes(cache, buf.getvalue())
    wanted = {r.name for r in records}
    return {n: p for n, p in known.items() if n in wanted}


def main(argv=None) -> int:
    from agegender.train import data as data_mod

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--detector-model", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    records, _ = data_mod.read_dataset(args.data, check_content=False)
    found = load_landmarks(records, args.data, args.detector_model)
    log.info("%d of %d crops have landmarks (%s)", len(found), len(records), cache_path(args.data, args.detector_model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
