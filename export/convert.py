"""Converters from a Keras model to the files the edge runtime runs.

Formats:

* ``tflite-fp32``: plain TFLite, builtin ops only.
* ``tflite-fp16``: float16 weights (half the size, float32 compute).
* ``tflite-int8``: full-integer quantization, calibrated on real faces, uint8 input
  (raw camera pixels go straight in), float32 outputs.
* ``onnx-fp32``: ONNX (opset 17) via Keras' tf2onnx export, outputs named age/gender.
* ``onnx-int8``: onnxruntime static QDQ quantization of the fp32 file, after
  ``quant_pre_process``, calibrated on the same faces.

TFLite goes through a SavedModel and ``TFLiteConverter`` with builtin ops only: a
model that would need Flex (SELECT_TF_OPS) ops is refused, since the edge runtime
cannot run them. Every file is written under a temporary name and renamed, so an
interrupted export never leaves a half-written model behind.
"""
from __future__ import annotations

import logging
import os
import tempfile
from typing import Callable, Iterable, Optional

import numpy as np

from agegender.edge.errors import AgeGenderError
from agegender.edge.files import atomic_write_bytes

log = logging.getLogger(__name__)

FORMATS = ("tflite-fp32", "tflite-fp16", "tflite-int8", "onnx-fp32", "onnx-int8")
EXTENSIONS = {"tflite": ".tflite", "onnx": ".onnx"}
ONNX_OPSET = 17


class ExportError(AgeGenderError):
    pass


def file_name(stem: str, fmt: str) -> str:
    """agegender_mnv2_128 + tflite-int8 -> agegender_mnv2_128_int8.tflite"""
    family, precision = fmt.split("-")
    return f"{stem}_{precision}{EXTENSIONS[family]}"


def atomic_move(src: str, path: str) -> None:
    with open(src, "rb") as f:
        atomic_write_bytes(path, f.read())


# --- TFLite ------------------------------------------------------------------

def _tflite_converter(saved_model_dir: str):
    import tensorflow as tf

    return tf, tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)


def convert_tflite(saved_model_dir: str, precision: str,
                   calibration: Optional[Callable[[], Iterable[np.ndarray]]] = None) -> bytes:
    """TFLite flatbuffer bytes for fp32, fp16 or int8 (int8 needs calibration batches)."""
    tf, converter = _tflite_converter(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if calibration is None:
            raise ExportError("tflite-int8 needs calibration faces (--calib DIR)")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([batch] for batch in calibration())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    elif precision != "fp32":
        raise ExportError(f"unknown TFLite precision {precision!r}")
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises ConverterError and friends
        text = str(exc)
        if "Flex" in text or "SELECT_TF_OPS" in text or "not supported" in text.lower() or "custom op" in text.lower():
            first = next((l.strip() for l in text.splitlines() if "op" in l.lower() and l.strip()), text[:200])
            raise ExportError(f"the model needs TensorFlow ops that TFLite builtins do not have "
                              f"(Flex/SELECT_TF_OPS), which the edge runtime cannot run: {first[:300]}") from None
        raise


# --- ONNX --------------------------------------------------------------------

def convert_onnx_fp32(model, path: str) -> None:
    """ONNX through Keras' exporter (tf2onnx), opset 17, input 'image', outputs by name."""
    # Keras' ONNX exporter refuses a model that was loaded but never called (as when no TFLite
    # format is exported first): one call on a blank input traces it
    model(np.zeros((1,) + tuple(model.input_shape[1:]), np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = os.path.join(tmp, "model.onnx")
        model.export(tmp_path, format="onnx", opset_version=ONNX_OPSET, verbose=False)
        atomic_move(tmp_path, path)


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader over our calibration batches."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]):
        self._iter = iter(batches)
        self.input_name = input_name

    def get_next(self):
        batch = next(self._iter, None)
        return None if batch is None else {self.input_name: batch.astype(np.float32)}


def convert_onnx_int8(fp32_path: str, path: str, calibration: Callable[[], Iterable[np.ndarray]]) -> None:
    """Static QDQ quantization (uint8 activations, int8 per-channel weights) of an fp32 ONNX file."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = ort.InferenceSession(fp32_path, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(fp32_path, pre, skip_symbolic_shape=False)
        out = os.path.join(tmp, "int8.onnx")
        quantize_static(pre, out, _CalibrationReader(input_name, calibration()),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax)
        atomic_move(out, path)


def export_saved_model(model, folder: str) -> str:
    path = os.path.join(folder, "saved_model")
    model.export(path, format="tf_saved_model", verbose=False)
    return path


def export_formats(model, formats: Iterable[str], out_dir: str, stem: str,
                   calibration: Optional[Callable[[], Iterable[np.ndarray]]] = None) -> dict[str, str]:
    """Write each requested format into out_dir; returns {format: path}."""
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    os.makedirs(out_dir, exist_ok=True)
    written: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        saved = export_saved_model(model, tmp) if any(f.startswith("tflite") for f in formats) else None
        onnx_fp32 = None
        for fmt in formats:
            path = os.path.join(out_dir, file_name(stem, fmt))
            log.info("exporting %s -> %s", fmt, path)
            if fmt.startswith("tflite"):
                atomic_write_bytes(path, convert_tflite(saved, fmt.split("-")[1], calibration))
            elif fmt == "onnx-fp32":
                convert_onnx_fp32(model, path)
                onnx_fp32 = path
            else:
                if calibration is None:
                    raise ExportError("onnx-int8 needs calibration faces (--calib DIR)")
                if onnx_fp32 is None:
                    onnx_fp32 = os.path.join(tmp, "fp32.onnx")
                    convert_onnx_fp32(model, onnx_fp32)
                convert_onnx_int8(onnx_fp32, path, calibration)
            written[fmt] = path
    return written
