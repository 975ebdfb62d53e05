"""Calibration data for full-integer quantization: real faces spanning all ages.

A quantized model only represents well the activation ranges it saw during
calibration; calibrated on young faces alone, old ages saturate. So the sample is
stratified over 5-year age bins and both genders, drawn from the *training* split
(never test), and checked for coverage before it is used.
"""
from __future__ import annotations

import logging
from typing import Iterator, Optional, Sequence

import numpy as np

from agegender.edge.errors import AgeGenderError
from agegender.edge.images import read_canonical
from agegender.train import data as data_mod
from agegender.train.metrics import AGE_BANDS, band_name

log = logging.getLogger(__name__)

MIN_PER_BAND = 3  # each age band (train.metrics.AGE_BANDS) needs at least this many faces


class CalibrationError(AgeGenderError):
    pass


def coverage(records: Sequence[data_mod.FaceRecord]) -> dict:
    """Faces per age band and per gender."""
    ages = np.array([r.age for r in records])
    bands = {band_name(lo, hi): int(((ages >= lo) & (ages <= hi)).sum()) for lo, hi in AGE_BANDS}
    genders = {name: sum(r.gender == i for r in records) for i, name in enumerate(data_mod.GENDERS)}
    return {"bands": bands, "genders": genders, "n": len(records)}


def check_coverage(records: Sequence[data_mod.FaceRecord], min_per_band: int = MIN_PER_BAND) -> dict:
    """Refuse calibration data that leaves out an age band or a gender."""
    cov = coverage(records)
    thin = [band for band, n in cov["bands"].items() if n < min_per_band]
    if thin:
        raise CalibrationError(f"calibration data does not span all ages: bands {thin} have fewer than "
                               f"{min_per_band} faces ({cov['bands']}); use a wider --calib set")
    if min(cov["genders"].values()) < min_per_band:
        raise CalibrationError(f"calibration data lacks a gender ({cov['genders']})")
    return cov


def select_calibration(data: str, n: int = 300, split_dir: Optional[str] = None,
                       seed: int = 0) -> list[data_mod.FaceRecord]:
    """A stratified sample of the training split (or of every image, for data with no split)."""
    source = data_mod.data_sources(data, split_dir)[0]
    records, _ = data_mod.read_source(source, check_content=False)
    try:
        records = data_mod.select_source_split(records, "train", source)
    except data_mod.DatasetError:
        log.warning("%s has no images of the training split: calibrating on a sample of all of it", data)
    sample = data_mod.stratified_sample(records, n, seed)
    cov = check_coverage(sample)
    log.info("calibration: %d faces, per age band %s, per gender %s", cov["n"], cov["bands"], cov["genders"])
    return sample


def calibration_batches(records: Sequence[data_mod.FaceRecord], model,
                        landmarks: Optional[dict] = None) -> Iterator[np.ndarray]:
    """One (1, S, S, 3) float32 batch of raw pixel values per face, as the exporters want, cut as the
    model's card says (re-aligned by each crop's landmarks for a model trained that way)."""
    for rec in records:
        points = (landmarks or {}).get(rec.name)
        yield model.preprocess_crop(read_canonical(rec.path), points).astype(np.float32)
