"""Plots people would rather look at than read: training curves, confusion matrices, bars."""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str) -> None:
    from agegender.edge.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_history(rows: Sequence[dict], path: str) -> None:
    """One panel per metric (loss, age MAE, accuracies), train vs validation, by epoch."""
    metrics = [k for k in rows[0] if k.startswith("val_")]
    if not metrics:
        return
    epochs = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    for ax, key in zip(axes[0], metrics):
        name = key[len("val_"):]
        for label, k in (("train", name), ("validation", key)):
            values = [float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows]
            ax.plot(epochs, values, marker="o", ms=3, label=label)
        phases = [r.get("phase") for r in rows]
        for i in range(1, len(rows)):
            if phases[i] != phases[i - 1]:
                ax.axvline(epochs[i] - 0.5, color="grey", ls=":", lw=1)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: str, title: str = "") -> None:
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.1 * len(labels) + 1.5))
    norm = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{matrix[i, j]}\n{norm[i, j]:.0%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    _save(fig, path)


def plot_grouped_bars(groups: Sequence[str], panels: dict, path: str, title: str = "") -> None:
    """One panel per metric ({panel title: {series name: values per group}}), bars per group
    for each series (e.g. male-only vs mixed training, per test slice)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5, 1.3 * len(groups)) * len(panels), 3.6),
                             squeeze=False)
    for ax, (panel, series) in zip(axes[0], panels.items()):
        width = 0.8 / max(1, len(series))
        for i, (name, values) in enumerate(series.items()):
            xs = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
            bars = ax.bar(xs, values, width, label=name)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(groups)), groups, rotation=20)
        ax.set_title(panel)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_scatter(points: Sequence[tuple[str, float, float]], path: str, xlabel: str, ylabel: str,
                 title: str = "") -> None:
    """Labelled points (e.g. accuracy vs latency per model format), named in a legend."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    markers = "osD^vP*Xh<>"
    for i, (label, x, y) in enumerate(points):
        ax.scatter([x], [y], s=55, marker=markers[i % len(markers)], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)
