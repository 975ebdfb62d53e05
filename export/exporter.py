"""``agegender export``: Keras model -> verified TFLite/ONNX files with model cards.

    export_model("models/agegender_mnv2_128.keras", formats, calib="UTKFace/", out="models/")

1. load the Keras model and its training card (input contract, training command);
2. pick calibration faces: a stratified, age-checked sample of the training split;
3. write each format (atomically);
4. verify each file with its edge backend against Keras on the test split;
5. write a card (JSON + Markdown) for every file that passed, delete the ones that
   failed, and return the table.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Optional, Sequence

from agegender.export import calibration as calib_mod
from agegender.export.card import write_card
from agegender.export.convert import FORMATS, ExportError, export_formats
from agegender.export.verify import (DEFAULT_MAX_GENDER_DROP, DEFAULT_MAX_MAE_INCREASE, FormatCheck,
                                     check_format, summarise)
from agegender.train import data as data_mod
from agegender.train.evaluate import evaluate_datasets, model_inputs, predictions_from
from agegender.train.keras_backend import open_any_model

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ExportResult:
    keras_metrics: dict
    checks: list[FormatCheck]
    split: str
    n_images: int

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def table(self) -> str:
        k = self.keras_metrics
        lines = [f"Verified on the **{self.split}** split ({self.n_images} images).", "",
                 "| format | file | size (MB) | age MAE | gender acc. | age-group acc. | MAE change vs Keras "
                 "| gender change | max per-face age diff | verdict |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
                 f"| keras | - | - | {k.get('age_mae', float('nan')):.3f} | {k.get('gender_accuracy', 0):.2%} | "
                 f"{k.get('age_group_accuracy', 0):.2%} | - | - | - | reference |"]
        for c in self.checks:
            m = c.metrics
            size = f"{os.path.getsize(c.path) / 1e6:.2f}" if os.path.exists(c.path) else "not written"
            if not m:  # the format failed before it could be scored
                lines.append(f"| {c.format} | `{os.path.basename(c.path)}` | {size} | - | - | - | - | - | - | "
                             f"FAIL: {c.reason} |")
                continue
            lines.append(
                f"| {c.format} | `{os.path.basename(c.path)}` | {size} | {m.get('age_mae', float('nan')):.3f} | "
                f"{m.get('gender_accuracy', 0):.2%} | {m.get('age_group_accuracy', 0):.2%} | "
                f"{m.get('age_mae_change', 0):+.3f} | {m.get('gender_accuracy_change', 0) * 100:+.2f} pt | "
                f"{c.max_abs_age_diff:.2f} | {'pass' if c.passed else 'FAIL: ' + c.reason} |")
        return "\n".join(lines)


def load_keras(model_path: str):
    from agegender.train.model_io import load_model

    if not os.path.isfile(model_path):
        raise ExportError(f"{model_path}: model file not found")
    return load_model(model_path, compile=False)


def export_model(model_path: str, formats: Sequence[str], out: str, calib: Optional[str] = None,
                 data: Optional[str] = None, split: str = "test", split_dir: Optional[str] = None,
                 name: Optional[str] = None, calib_size: int = 300, max_images: Optional[int] = None,
                 max_mae_increase: float = DEFAULT_MAX_MAE_INCREASE,
                 max_gender_drop: float = DEFAULT_MAX_GENDER_DROP, command: str = "",
                 align_detector: Optional[str] = None, cross_data: Sequence[str] = ()) -> ExportResult:
    """Export, verify against Keras on ``data``'s ``split``, write each passing file's card; with
    ``cross_data`` (several datasets), also score each file on every dataset's test split and record
    the table in its card (``cross_dataset_test``)."""
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    model = load_keras(model_path)
    reference = open_any_model(model_path, keras_model=model)  # the Keras model and its training card
    card = reference.card
    if card.alignment == "landmarks" and not align_detector:
        log.warning("%s was trained on landmark-aligned crops: pass --align-detector so calibration and "
                    "verification see the crops it was trained on", model_path)

    def landmarks_for(records, folder):
        if not align_detector:
            return None
        from agegender.train.landmarks import load_landmarks
        return load_landmarks(records, folder, align_detector)

    calib_records = None
    calibration = None
    if any(f.endswith("int8") for f in formats):
        if not calib:
            raise ExportError("int8 formats need --calib DIR: real faces spanning all ages (e.g. the UTKFace folder)")
        calib_records = calib_mod.select_calibration(calib, calib_size, split_dir)
        calib_landmarks = landmarks_for(calib_records, calib)
        calibration = lambda: calib_mod.calibration_batches(calib_records, reference, calib_landmarks)  # noqa: E731

    stem = name or os.path.splitext(os.path.basename(model_path))[0]
    written = export_formats(model, formats, out, stem, calibration)

    data = data or calib
    if not data:
        raise ExportError("verification needs --data DIR (labelled faces with a test split)")
    source = data_mod.data_sources(data, split_dir)[0]
    records, _ = data_mod.read_source(source, check_content=False)
    records = data_mod.select_source_split(records, split, source)
    if max_images:
        records = data_mod.stratified_sample(records, max_images, seed=0)
    log.info("verifying on %d %s images", len(records), split)
    images = model_inputs(reference, records, landmarks_for(records, data))
    keras_outputs = reference.run(images)
    keras_metrics = summarise(predictions_from(records, keras_outputs), card.groups)

    checks = []
    for fmt, path in written.items():
        input_dtype = "uint8" if fmt == "tflite-int8" else "float32"
        file_card = card.for_file(path, fmt, input_dtype, training=card.to_dict(), export_command=command,
                                  calibration=calib_mod.coverage(calib_records)
                                  if calib_records and fmt.endswith("int8") else None)
        check = check_format(fmt, path, file_card, records, images, keras_outputs, keras_metrics,
                             max_mae_increase, max_gender_drop)
        checks.append(check)
        if check.passed:
            file_card.extra["metrics"] = {**check.metrics, "split": split, "n_images": len(records),
                                          "split_files": source.describe()["split_files"]}
            write_card(file_card, path)
            if cross_data:
                record_cross_dataset(path, file_card, cross_data, split_dir, align_detector, command)
        else:
            log.error("%s failed verification (%s): removing %s", fmt, check.reason, path)
            os.unlink(path)
    return ExportResult(keras_metrics, checks, split, len(records))


def cross_dataset_table(reports: dict) -> dict:
    """{dataset: split, n, MAE, gender accuracy, mean signed error per age band} for a model card
    (a band without faces: null; + 0.0 turns a rounded -0.0 into 0.0)."""
    from agegender.edge.outputs import json_safe

    table = {name: {"split": r.split, "n": r.n_images, "age_mae": round(r.metrics["age_mae"], 3),
                    "gender_accuracy": round(r.metrics["gender"]["accuracy"], 4),
                    "bias_by_band": {band: round(v["bias"], 2) + 0.0 for band, v in r.metrics["age_mae_by_band"].items()}}
             for name, r in reports.items()}
    return json_safe(table)


def record_cross_dataset(path: str, file_card, cross_data: Sequence[str], split_dir: Optional[str],
                         align_detector: Optional[str], command: str) -> None:
    """Score the exported file on every dataset's test split and record the table in its card."""
    log.info("%s: scoring on the test split of %d datasets for its card", os.path.basename(path), len(cross_data))
    reports = evaluate_datasets(path, data_mod.data_sources(list(cross_data), split_dir), split="test",
                                align_detector=align_detector)
    file_card.extra["cross_dataset_test"] = cross_dataset_table(reports)
    file_card.extra["cross_dataset_command"] = command
    write_card(file_card, path)
