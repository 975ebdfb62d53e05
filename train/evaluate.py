"""Evaluation: score a model on a named split, overall and by gender and race.

Works on a Keras model (``.keras``, needs TensorFlow) and on exported files
(``.tflite``/``.onnx`` through the edge backends, no TensorFlow), so the same
numbers can be compared across formats. Writes ``metrics.json``, ``report.md`` and
``confusion.png``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Callable, Optional, Sequence

import numpy as np

from agegender.edge.contract import AgeGroups
from agegender.edge.images import read_canonical
from agegender.edge.postprocess import age_mean_std
from agegender.train import data as data_mod
from agegender.train import metrics as M

log = logging.getLogger(__name__)

Predictor = Callable[[np.ndarray], dict]


@dataclasses.dataclass
class Predictions:
    """Per-image predictions beside the labels."""

    records: list
    age_distribution: Optional[np.ndarray]  # (N, 101)
    female_prob: Optional[np.ndarray]  # (N,)
    group_probs: Optional[np.ndarray] = None  # (N, G) from a --task group model
    poses: Optional[list] = None  # pose bucket of each face (from its landmarks), None where unknown

    @property
    def ages(self) -> np.ndarray:
        return np.array([r.age for r in self.records], float)

    @property
    def genders(self) -> np.ndarray:
        return np.array([r.gender for r in self.records], int)

    @property
    def predicted_ages(self) -> Optional[np.ndarray]:
        return None if self.age_distribution is None else age_mean_std(self.age_distribution)[0]


@dataclasses.dataclass
class EvaluationReport:
    model: str
    split: str
    n_images: int
    metrics: dict

    def summary(self) -> str:
        m = self.metrics
        parts = [f"{self.model} on {self.split} ({self.n_images} images):"]
        if "age_mae" in m:
            parts.append(f"age MAE {m['age_mae']:.2f}")
        if "age_group" in m:
            parts.append(f"age-group accuracy {m['age_group']['accuracy']:.1%} "
                         f"(macro F1 {m['age_group']['macro']['f1']:.3f})")
        if "gender" in m:
            parts.append(f"gender accuracy {m['gender']['accuracy']:.1%}")
        return " ".join(parts)

    def to_markdown(self) -> str:
        m = self.metrics
        lines = [f"# Evaluation of `{os.path.basename(self.model)}`", "",
                 f"Split: **{self.split}** ({self.n_images} images)"
                 + (f", split files: `{m['split_dir']}`" if m.get("split_dir") else ""), ""]
        if "age_mae" in m:
            lines += ["## Age", "", f"MAE **{m['age_mae']:.2f}** years (mean predicted spread "
                      f"± {m.get('age_std_mean', float('nan')):.1f})", "",
                      "| age band | n | MAE | mean signed error | gender acc. |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {band} | {v['n']} | {v['mae']:.2f} | {format_figure(v['bias'], signed=True)} | "
                      f"{format_figure(v.get('gender_accuracy'), pct=True)} |"
                      for band, v in m["age_mae_by_band"].items()]
            lines += ["", "Mean signed error: predicted minus true age; above 0 the band reads too old. Gender "
                      "accuracy by the true age's band.", ""]
        if "age_group" in m:
            g = m["age_group"]
            lines += ["## Age groups", "", f"accuracy **{g['accuracy']:.1%}**, macro F1 {g['macro']['f1']:.3f}",
                      "", "| group | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {name} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                      for name, v in g.items() if name not in ("macro", "accuracy")]
            lines += [f"| macro | {g['macro']['precision']:.3f} | {g['macro']['recall']:.3f} | "
                      f"{g['macro']['f1']:.3f} | |", "", "![confusion matrix](confusion.png)", ""]
        if "gender" in m:
            g = m["gender"]
            lines += ["## Gender (positive class: female)", "",
                      f"accuracy **{g['accuracy']:.1%}**, precision {g['precision']:.3f}, "
                      f"recall {g['recall']:.3f}, F1 {g['f1']:.3f}", ""]
        for by in ("by_gender", "by_race", "by_pose"):
            if m.get(by):
                lines += [f"## {by.replace('_', ' ').capitalize()}", "",
                          "| group | n | age MAE | age-group acc. | gender acc. |", "|---|---:|---:|---:|---:|"]
                for name, v in m[by].items():
                    lines.append(f"| {name} | {v['n']} | {format_figure(v.get('age_mae'))} | "
                                 f"{format_figure(v.get('age_group_accuracy'), pct=True)} | "
                                 f"{format_figure(v.get('gender_accuracy'), pct=True)} |")
                lines.append("")
        return "\n".join(lines)


def format_figure(value, pct: bool = False, signed: bool = False) -> str:
    """A figure for a report: "-" when missing, a percentage, or 2 decimals (signed: +/-, never -0.00)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if pct:
        return f"{value:.1%}"
    value = round(float(value), 2) + 0.0  # never "-0.00"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def attribute_slices(records: Sequence) -> dict:
    """{"by_gender": {name: mask}, "by_race": {name: mask}} over the records; a missing label is
    "unknown"; empty slices are left out."""
    out = {}
    for by, key, names in (("by_gender", "gender", data_mod.GENDERS), ("by_race", "race", data_mod.RACES)):
        values = np.array([getattr(r, key) if getattr(r, key) is not None else -1 for r in records])
        masks = {name: values == idx for idx, name in list(enumerate(names)) + [(-1, "unknown")]}
        out[by] = {name: mask for name, mask in masks.items() if mask.any()}
    return out


def compute_metrics(pred: Predictions, groups: AgeGroups = AgeGroups()) -> dict:
    """Every metric of the report from predictions and labels (pure numpy)."""
    out: dict = {}
    true_group = groups.index_of(np.minimum(pred.ages, 200))
    pred_group = None
    # each face's gender call against its label (the runtime's rule, postprocess.decide_gender: female from 0.5)
    gender_right = None if pred.female_prob is None else pred.genders == (pred.female_prob >= 0.5)
    if pred.age_distribution is not None:
        pred_ages = pred.predicted_ages
        out["age_mae"] = M.mae(pred.ages, pred_ages)
        out["age_std_mean"] = float(age_mean_std(pred.age_distribution)[1].mean())
        # with the gender accuracy by the true age's band: where the gender errors live (young children, mostly)
        out["age_mae_by_band"] = M.mae_by_band(pred.ages, pred_ages, gender_right=gender_right)
        pred_group = groups.index_of(pred_ages)  # the runtime's rule (postprocess.decide_age_group)
    elif pred.group_probs is not None:
        pred_group = pred.group_probs.argmax(-1)
    if pred_group is not None:
        matrix = M.confusion_matrix(true_group, pred_group, len(groups.names))
        out["age_group"] = M.per_class_scores(matrix, groups.names)
        out["age_group_confusion"] = matrix.tolist()
        out["age_group_names"] = list(groups.names)
    if pred.female_prob is not None:
        out["gender"] = M.binary_scores(pred.genders, pred.female_prob >= 0.5)
    slices = attribute_slices(pred.records)
    if pred.poses is not None:
        poses = np.array([p or "unknown" for p in pred.poses])
        slices["by_pose"] = {name: poses == name for name in ("frontal", "turned", "profile", "unknown")
                             if (poses == name).any()}
    for by, masks in slices.items():
        table = {}
        for name, mask in masks.items():
            row = {"n": int(mask.sum())}
            if pred.age_distribution is not None:
                row["age_mae"] = M.mae(pred.ages[mask], pred.predicted_ages[mask])
                row["age_bias"] = M.mean_signed_error(pred.ages[mask], pred.predicted_ages[mask])
            if pred_group is not None:
                row["age_group_accuracy"] = float(np.mean(true_group[mask] == pred_group[mask]))
            if gender_right is not None:
                row["gender_accuracy"] = float(np.mean(gender_right[mask]))
            table[name] = row
        out[by] = table
    return out


def model_inputs(model, records: Sequence, landmarks: Optional[dict] = None, views: int = 1) -> np.ndarray:
    """(N x views, S, S, 3) uint8 inputs for canonical crops, exactly as the model's card says to feed
    them, each crop's alignment views in a row."""
    landmarks = landmarks or {}
    return np.concatenate([model.preprocess_crop(read_canonical(r.path), landmarks.get(r.name), views) for r in records])


def predict_records(model, records: Sequence, batch_size: int = 64, progress_every: int = 20,
                    landmarks: Optional[dict] = None, flip: bool = False, views: int = 1) -> Predictions:
    """Raw outputs of an AgeGenderModel over labelled crops, beside their labels; with ``flip``, each
    face's outputs averaged with its mirror image's (as ``Estimator(flip=True)``), and over ``views``
    alignment views (as ``Estimator(views=...)``)."""
    outs: dict[str, list] = {}
    n_batches = (len(records) + batch_size - 1) // batch_size
    started = time.time()
    for i, start in enumerate(range(0, len(records), batch_size)):
        chunk = records[start:start + batch_size]
        for name, value in model.run(model_inputs(model, chunk, landmarks, views), batch_size, flip, views).items():
            outs.setdefault(name, []).append(np.asarray(value))
        if progress_every and (i + 1) % progress_every == 0:
            log.info("scored %d/%d batches (%.0f s)", i + 1, n_batches, time.time() - started)
    return predictions_from(records, {k: np.concatenate(v) for k, v in outs.items()})


def split_with_landmarks(source, split: str, align_detector: Optional[str]) -> tuple[list, Optional[dict]]:
    """One dataset's records of a split, and their crops' cached landmarks (None without a detector)."""
    from agegender.train.landmarks import load_landmarks

    records, _ = data_mod.read_source(source)
    records = data_mod.select_source_split(records, split, source)
    return records, (load_landmarks(records, source.path, align_detector) if align_detector else None)


def predictions_from(records: Sequence, outputs: dict) -> Predictions:
    return Predictions(list(records), outputs.get("age"),
                       outputs["gender"].reshape(-1) if "gender" in outputs else None, outputs.get("group"))


def evaluate_model(model_path: str, data, split: str = "test", split_dir: Optional[str] = None,
                   out: Optional[str] = None, batch_size: int = 64, max_images: Optional[int] = None,
                   align_detector: Optional[str] = None) -> EvaluationReport:
    """Score a model on one dataset (a path, or ``NAME=PATH``)."""
    sources = data_mod.data_sources(data, split_dir)
    if len(sources) != 1:
        raise data_mod.DatasetError("evaluate_model scores one dataset; use evaluate_datasets for several")
    return evaluate_datasets(model_path, sources, split, out, batch_size, max_images,
                             align_detector)[sources[0].name]




def evaluate_datasets(model_path: str, sources: Sequence, split: str = "test", out: Optional[str] = None,
                      batch_size: int = 64, max_images: Optional[int] = None,
                      align_detector: Optional[str] = None, flip: bool = False, views: int = 1) -> dict:
    """{dataset name: report}; with several datasets and ``out``, one folder each plus summary.md."""
    from agegender.train.keras_backend import open_any_model

    model = open_any_model(model_path)
    groups = model.card.groups
    if model.wants_crop_landmarks and not align_detector:
        log.warning("%s was trained on crops re-aligned by their landmarks (its card says alignment: landmarks): "
                    "pass --align-detector YUNET.onnx to score it on faces as it sees them", model_path)
    reports = {}
    for source in sources:
        records, read_report = data_mod.read_source(source)
        records = data_mod.select_source_split(records, split, source)
        if max_images:  # a seeded sample spread over ages and genders, not the first names
            records = data_mod.stratified_sample(records, max_images, seed=0)
        log.info("scoring %s on %d %s images of %s", model_path, len(records), split, source.name)
        landmarks = None
        if align_detector:
            from agegender.train.landmarks import load_landmarks
            landmarks = load_landmarks(records, source.path, align_detector)
        pred = predict_records(model, records, batch_size, landmarks=landmarks, flip=flip, views=views)
        if landmarks is not None:
            from agegender.edge.quality import face_quality
            pred.poses = [face_quality(landmarks[r.name]).pose if r.name in landmarks else None for r in records]
        metrics = compute_metrics(pred, groups)
        metrics["dataset"] = source.describe()
        metrics["alignment"] = ("crops re-aligned by their landmarks" if landmarks is not None
                                and model.wants_crop_landmarks else "crops as given")
        metrics["split_dir"] = None if split == "all" else source.describe()["split_files"]
        metrics["skipped_inputs"] = dict(read_report.skipped)
        metrics["flip_averaging"] = flip
        metrics["alignment_views"] = views
        reports[source.name] = EvaluationReport(model_path, f"{source.name} {split}", len(records), metrics)
    if out:
        if len(reports) == 1:
            write_report(next(iter(reports.values())), out)
        else:
            for name, report in reports.items():
                write_report(report, os.path.join(out, name))
            write_summary(reports, out)
    return reports


def summary_markdown(reports: dict) -> str:
    """One table across datasets: MAE, gender, and the mean signed error of every age band."""
    bands = [b for lo, hi in M.AGE_BANDS for b in [M.band_name(lo, hi)]]
    lines = ["| dataset | split | n | age MAE | gender acc. | " + " | ".join(f"{b} bias" for b in bands) + " |",
             "|---|---|---:|---:|---:|" + "---:|" * len(bands)]
    for name, report in reports.items():
        m = report.metrics
        by_band = m.get("age_mae_by_band", {})
        cells = [format_figure(by_band.get(b, {}).get("bias"), signed=True) for b in bands]
        gender = m.get("gender", {}).get("accuracy")
        lines.append(f"| {name} | {report.split.split()[-1]} | {report.n_images} | {format_figure(m.get('age_mae'))} | "
                     f"{format_figure(gender, pct=True)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_summary(reports: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    model = next(iter(reports.values())).model
    text = (f"# `{os.path.basename(model)}` on {len(reports)} datasets\n\n" + summary_markdown(reports)
            + "\n\nBias = mean signed error (predicted minus true age, years). Each dataset's full report "
              "is in its folder.\n")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({name: {"split": r.split, "n_images": r.n_images, **r.metrics} for name, r in reports.items()},
                  f, indent=2)


def write_report(report: EvaluationReport, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"model": report.model, "split": report.split, "n_images": report.n_images,
                   **report.metrics}, f, indent=2)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report.to_markdown() + "\n")
    if "age_group_confusion" in report.metrics:
        try:
            from agegender.train.plots import plot_confusion

            plot_confusion(np.array(report.metrics["age_group_confusion"]), report.metrics["age_group_names"],
                           os.path.join(out, "confusion.png"), title=f"age groups, {report.split} split")
        except ImportError:
            log.warning("matplotlib is not installed: no confusion.png")
    log.info("report written to %s", out)
