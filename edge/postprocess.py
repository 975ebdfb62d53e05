"""Turning raw model outputs into results: pure numpy functions and one dataclass."""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from agegender.edge.contract import AgeGroups

GENDER_LABELS = ("male", "female")


@dataclasses.dataclass
class AgeGender:
    """What the model says about one face."""

    age: float
    age_std: float
    age_group: str
    gender: str
    gender_prob: float  # probability of the reported gender (>= 0.5)
    female_prob: float

    def label(self) -> str:
        """Short overlay text, e.g. '34 ± 5 · F 0.93'."""
        return f"{self.age:.0f} ± {self.age_std:.0f} · {self.gender[0].upper()} {self.gender_prob:.2f}"


def age_mean_std(distribution: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expectation and standard deviation of (N, K) age distributions over ages 0..K-1.

    The distribution is renormalised first: quantized models' softmax outputs do not
    sum exactly to 1.
    """
    dist = np.clip(np.asarray(distribution, np.float64), 0, None)
    dist = dist / np.maximum(dist.sum(-1, keepdims=True), 1e-12)
    ages = np.arange(dist.shape[-1], dtype=np.float64)
    mean = dist @ ages
    var = dist @ ages ** 2 - mean ** 2
    return mean, np.sqrt(np.maximum(var, 0.0))


def decode(age_distribution: Optional[np.ndarray], female_prob: Optional[np.ndarray],
           groups: AgeGroups = AgeGroups()) -> list[AgeGender]:
    """Results for a batch of raw outputs ((N, 101) age distribution, (N, 1) gender)."""
    n = len(age_distribution) if age_distribution is not None else len(female_prob)
    if age_distribution is not None:
        mean, std = age_mean_std(age_distribution)
        group_idx = groups.probabilities(age_distribution).argmax(-1)
    else:
        mean = std = np.full(n, np.nan)
        group_idx = np.zeros(n, int)
    female = (np.asarray(female_prob, np.float64).reshape(n) if female_prob is not None
              else np.full(n, np.nan))
    out = []
    for i in range(n):
        is_female = bool(female[i] >= 0.5)
        out.append(AgeGender(
            age=float(mean[i]), age_std=float(std[i]),
            age_group=groups.names[int(group_idx[i])] if age_distribution is not None else "",
            gender=GENDER_LABELS[int(is_female)],
            gender_prob=float(female[i] if is_female else 1 - female[i]),
            female_prob=float(female[i])))
    return out
