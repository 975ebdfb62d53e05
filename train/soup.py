"""Weight averaging over a run's epochs (a "greedy soup", Wortsman et al. 2022).

Fine-tuning from one model at a low learning rate visits several nearby solutions; their
average is often better than any one of them. With ``--snapshots`` a run keeps every epoch's
weights in ``snapshots/epoch_NN.npz``; with ``--average greedy`` the run's end walks the
epochs from the best validation score down and keeps an epoch in the average only if the
average's validation score improves. The choice sees the validation split only.

BatchNorm statistics are frozen while fine-tuning (see trainer), so every snapshot shares
them and a plain mean of the weights is a consistent model.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Callable, Sequence

import numpy as np

from agegender.edge.files import atomic_path

log = logging.getLogger(__name__)

SNAPSHOT_NAME = re.compile(r"^epoch_(\d+)\.npz$")


def snapshot_file(folder: str, epoch: int) -> str:
    return os.path.join(folder, f"epoch_{epoch:02d}.npz")


def save_snapshot(weights: Sequence[np.ndarray], path: str) -> None:
    """One epoch's weights, in the model's own order (``model.get_weights()``)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez(tmp, *weights)


def load_snapshot(path: str) -> list[np.ndarray]:
    with np.load(path) as npz:
        return [npz[f"arr_{i}"] for i in range(len(npz.files))]


def list_snapshots(folder: str) -> dict[int, str]:
    """{epoch: file} of the snapshots in ``folder``."""
    if not os.path.isdir(folder):
        return {}
    found = {}
    for name in os.listdir(folder):
        match = SNAPSHOT_NAME.match(name)
        if match:
            found[int(match.group(1))] = os.path.join(folder, name)
    return found


def mean_weights(weight_sets: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Element-wise mean of several models' weights (same architecture, same order)."""
    if not weight_sets:
        raise ValueError("no weights to average")
    if len({len(ws) for ws in weight_sets}) != 1:
        raise ValueError("the snapshots do not have the same number of weights")
    return [np.mean([ws[i].astype(np.float64) for ws in weight_sets], axis=0).astype(weight_sets[0][i].dtype)
            for i in range(len(weight_sets[0]))]


@dataclasses.dataclass
class SoupResult:
    epochs: list[int]  # the epochs averaged, in the order they joined
    score: float  # validation score of the average (lower is better)
    best_single_score: float  # validation score of the best single epoch
    tried: list[dict]  # one row per epoch tried: epoch, its own score, the average's score, kept


def greedy_soup(scores: dict[int, float], snapshots: dict[int, str],
                evaluate: Callable[[list[np.ndarray]], float]) -> tuple[list[np.ndarray], SoupResult]:
    """Average epochs greedily: start from the best-scoring epoch, add the next best if the
    average's score (``evaluate(weights)``, lower is better) improves. ``scores``: each epoch's
    own validation score (the run's history), so a single epoch is never scored again."""
    order = sorted((e for e in scores if e in snapshots), key=lambda e: scores[e])
    if not order:
        raise ValueError("no snapshots with a validation score")
    first = order[0]
    kept = {first: load_snapshot(snapshots[first])}
    best_score = scores[first]
    tried = [{"epoch": first, "epoch_score": scores[first], "average_score": best_score, "kept": True}]
    log.info("soup: epoch %d alone scores %.4f", first, best_score)
    for epoch in order[1:]:
        candidate = load_snapshot(snapshots[epoch])
        score = evaluate(mean_weights(list(kept.values()) + [candidate]))
        keep = score < best_score
        tried.append({"epoch": epoch, "epoch_score": scores[epoch], "average_score": score, "kept": keep})
        log.info("soup: + epoch %d (alone %.4f): %.4f, %s", epoch, scores[epoch], score,
                 "kept" if keep else "left out")
        if keep:
            kept[epoch], best_score = candidate, score
    weights = mean_weights(list(kept.values()))
    return weights, SoupResult(epochs=list(kept), score=best_score, best_single_score=tried[0]["average_score"],
                               tried=tried)
