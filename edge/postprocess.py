"""Turning raw model outputs into results: pure numpy functions and one dataclass."""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from agegender.edge.contract import AgeGroups

GENDER_LABELS = ("male", "female")


@dataclasses.dataclass
class AgeGender:
    """What the model says about one face; a head the model does not have leaves its fields None."""

    age: Optional[float]
    age_std: Optional[float]
    age_group: Optional[str]
    gender: Optional[str]
    gender_prob: Optional[float]  # probability of the reported gender (>= 0.5)
    female_prob: Optional[float]

    def label(self) -> str:
        """Short overlay text, e.g. '34 ± 5 · F 0.93' (or only the parts the model predicts)."""
        return result_label(self)


def result_label(r) -> str:
    parts = []
    if r.age is not None:
        parts.append(f"{r.age:.0f} ± {r.age_std:.0f}")
    elif r.age_group is not None:
        parts.append(r.age_group)
    if r.gender is not None:
        parts.append(f"{r.gender[0].upper()} {r.gender_prob:.2f}")
    return " · ".join(parts) or "?"


def age_mean_std(distribution: np.ndarray, ages: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Expectation and standard deviation of (N, K) age distributions over ages 0..K-1 (or over
    ``ages``, the age each of the K bins stands for).

    The distribution is renormalised first: quantized models' softmax outputs do not
    sum exactly to 1.
    """
    dist = np.clip(np.asarray(distribution, np.float64), 0, None)
    dist = dist / np.maximum(dist.sum(-1, keepdims=True), 1e-12)
    ages = np.arange(dist.shape[-1], dtype=np.float64) if ages is None else np.asarray(ages, np.float64)
    mean = dist @ ages
    var = dist @ ages ** 2 - mean ** 2
    return mean, np.sqrt(np.maximum(var, 0.0))


# --- the decisions, made here and nowhere else ------------------------------------

def decide_gender(female_prob: float) -> tuple[str, float]:
    """(gender, probability of that gender): female from 0.5 up."""
    is_female = bool(female_prob >= 0.5)
    return GENDER_LABELS[int(is_female)], float(female_prob if is_female else 1.0 - female_prob)


def decide_age_group(age: float, groups: AgeGroups) -> str:
    """The group whose span holds the estimated age (the same rule for still pictures and tracks)."""
    return groups.name_of(age)


def decode(age_distribution: Optional[np.ndarray], female_prob: Optional[np.ndarray],
           groups: AgeGroups = AgeGroups(), group_probs: Optional[np.ndarray] = None) -> list[AgeGender]:
    """Results for a batch of raw outputs: (N, 101) age distribution, (N, 1) female probability,
    (N, G) age-group probabilities; any of them may be absent (single-task models)."""
    present = [x for x in (age_distribution, female_prob, group_probs) if x is not None]
    if not present:
        return []
    n = len(present[0])
    mean = std = None
    if age_distribution is not None:
        mean, std = age_mean_std(age_distribution)
    female = None if female_prob is None else np.asarray(female_prob, np.float64).reshape(n)
    group_idx = None if group_probs is None else np.asarray(group_probs).argmax(-1)
    out = []
    for i in range(n):
        age = age_std = group = gender = gender_p = female_p = None
        if mean is not None and np.isfinite(mean[i]):
            age, age_std = float(mean[i]), float(std[i])
            group = decide_age_group(age, groups)
        elif group_idx is not None:
            group = groups.names[int(group_idx[i])]
        if female is not None and np.isfinite(female[i]):
            female_p = float(female[i])
            gender, gender_p = decide_gender(female_p)
        out.append(AgeGender(age, age_std, group, gender, gender_p, female_p))
    return out
