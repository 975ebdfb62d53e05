"""How often each training face is drawn: per-dataset weights and age balancing.

A model trained on the raw age histogram learns its prior: UTKFace and AAF are both
dense at 20-35, so a sparse age (a child, a teenager, someone over 60) is pulled toward
that middle and comes out too old or too young. Drawing faces with probability
proportional to ``1 / frequency(age) ** power`` (frequency over age bins smoothed with a
Gaussian, so one rare year does not get an enormous weight) flattens the prior; ``power``
0 is the raw histogram, 1 a flat one. Each dataset first gets the share of the draws its
weight asks for, whatever its size.

Pure numpy: the trainer hands the probabilities to ``FaceSequence``, which draws each
epoch's faces with replacement.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

MAX_AGE_BIN = 100


def smoothed_age_frequency(ages: Sequence[float], sigma: float = 3.0) -> np.ndarray:
    """Frequency of each age 0..100 in ``ages``, smoothed by a Gaussian of ``sigma`` years."""
    counts = np.bincount(np.clip(np.asarray(ages, int), 0, MAX_AGE_BIN), minlength=MAX_AGE_BIN + 1).astype(float)
    offsets = np.arange(-int(4 * sigma), int(4 * sigma) + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    smooth = np.convolve(counts, kernel / kernel.sum(), mode="same")
    return smooth / max(smooth.sum(), 1e-12)


def age_balance_weights(ages: Sequence[float], power: float = 0.5, sigma: float = 3.0,
                        max_ratio: float = 20.0) -> np.ndarray:
    """A weight per face, ``frequency(age) ** -power``, mean 1, capped at ``max_ratio`` x the smallest."""
    ages = np.clip(np.asarray(ages, int), 0, MAX_AGE_BIN)
    if power == 0 or len(ages) == 0:
        return np.ones(len(ages))
    freq = smoothed_age_frequency(ages, sigma)[ages]
    weights = np.power(np.maximum(freq, 1e-9), -power)
    weights = np.minimum(weights, weights.min() * max_ratio)
    return weights / weights.mean()


def sampling_probabilities(datasets: Sequence[str], ages: Sequence[float],
                           dataset_weights: Mapping[str, float], age_power: float = 0.5) -> np.ndarray:
    """Probability of drawing each face: its dataset's share, split by age balance inside the dataset."""
    datasets = np.asarray(datasets)
    ages = np.asarray(ages, float)
    probs = np.zeros(len(ages))
    names = sorted(set(datasets.tolist()))
    shares = np.array([float(dataset_weights.get(n, 1.0)) for n in names])
    if (shares < 0).any() or shares.sum() <= 0:
        raise ValueError(f"dataset weights must be >= 0 and not all 0, got {dict(zip(names, shares))}")
    shares = shares / shares.sum()
    for name, share in zip(names, shares):
        mask = datasets == name
        w = age_balance_weights(ages[mask], age_power)
        probs[mask] = share * w / w.sum()
    return probs / probs.sum()


def expected_age_histogram(ages: Sequence[float], probs: Sequence[float], bands: Sequence[int]) -> np.ndarray:
    """Share of the draws falling in each band (lower bounds), for logs and reports."""
    idx = np.searchsorted(np.asarray(bands), np.asarray(ages), side="right") - 1
    return np.array([float(np.asarray(probs)[idx == b].sum()) for b in range(len(bands))])
