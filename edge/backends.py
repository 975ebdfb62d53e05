"""Inference backends behind one small interface, chosen by file type.

* ``.tflite``: LiteRT (``ai_edge_litert``), falling back to ``tflite_runtime``.
  Outputs are read through the signature runner, by name.
* ``.onnx``: onnxruntime, outputs read by name.

Both take a batch of input-contract crops (N, S, S, 3) uint8 RGB and return
``{"age": (N, 101), "gender": (N, 1)}`` as float32. No TensorFlow.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from typing import Optional

import numpy as np

from agegender.edge.errors import AgeGenderError

log = logging.getLogger(__name__)

KNOWN_OUTPUTS = ("age", "gender", "group")


class ModelError(AgeGenderError):
    """A model file that is missing, unreadable or not an age/gender model."""


@dataclasses.dataclass
class ModelInfo:
    path: str
    format: str  # "tflite" or "onnx"
    input_name: str
    input_size: int
    input_dtype: str  # "uint8" or "float32"
    output_names: tuple[str, ...]


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise ModelError(f"{path}: model file not found")
    if os.path.getsize(path) < 64:
        raise ModelError(f"{path}: model file is empty or truncated ({os.path.getsize(path)} bytes)")


# The last dimension of each known output: 101 ages, 1 gender probability, G age groups (any).
OUTPUT_WIDTH = {"age": 101, "gender": 1, "group": None}


def _check_outputs(path: str, shapes: dict) -> tuple[str, ...]:
    """The known outputs ({name: shape}), each of the right width; ModelError otherwise."""
    known = tuple(n for n in shapes if n in KNOWN_OUTPUTS)
    if not known:
        raise ModelError(f"{path}: not an age/gender model (outputs {list(shapes)}, expected 'age' and/or 'gender')")
    for name in known:
        shape, width = list(shapes[name]), OUTPUT_WIDTH[name]
        if len(shape) != 2 or (width is not None and shape[1] != width):
            expected = f"[N, {width}]" if width is not None else "[N, groups]"
            raise ModelError(f"{path}: output '{name}' has shape {shape}, expected {expected}")
    return known


def _check_input_shape(path: str, shape) -> int:
    shape = list(shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2] or not isinstance(shape[1], (int, np.integer)):
        raise ModelError(f"{path}: input shape {shape} is not (N, S, S, 3) RGB")
    return int(shape[1])


@contextlib.contextmanager
def native_stderr_silenced(active: bool = True):
    """Hide what C++ libraries write straight to file descriptor 2 (not Python's logging)."""
    if not active:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters, some test runners)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _load_litert_interpreter():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # abandoned, kept as a fallback
        except ImportError:
            raise ModelError("no TFLite runtime: pip install ai-edge-litert") from None
    return Interpreter


class TFLiteBackend:
    """A .tflite file run by LiteRT through its (first) signature."""

    def __init__(self, path: str, threads: Optional[int] = None):
        _check_file(path)
        interpreter_cls = _load_litert_interpreter()
        try:
            self.interpreter = interpreter_cls(model_path=path, num_threads=threads)
            signatures = self.interpreter.get_signature_list()
            if not signatures:
                raise ModelError(f"{path}: no signature in the TFLite file (export it with agegender export)")
            key = next(iter(signatures))
            self.runner = self.interpreter.get_signature_runner(key)
            inputs = self.runner.get_input_details()
            outputs = self.runner.get_output_details()
        except (ValueError, RuntimeError, IndexError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: not a readable TFLite model ({(str(exc).splitlines() or [''])[0][:160]})") \
                from None
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one image input, found {list(inputs)}")
        input_name, detail = next(iter(inputs.items()))
        self.info = ModelInfo(path, "tflite", input_name, _check_input_shape(path, detail["shape"]),
                              np.dtype(detail["dtype"]).name,
                              _check_outputs(path, {n: list(d["shape"]) for n, d in outputs.items()}))
        self._output_quant = {name: d.get("quantization", (0.0, 0)) for name, d in outputs.items()}
        self._first_call = True
        # A uint8 input is meant to take raw pixels (scale 1, zero point 0); if the
        # converter chose other parameters, quantize the pixels with them.
        scale, zero = detail.get("quantization", (0.0, 0))
        self._input_quant = None
        if self.info.input_dtype == "uint8" and scale and (abs(scale - 1.0) > 1e-6 or zero != 0):
            self._input_quant = (float(scale), int(zero))
            log.debug("%s: uint8 input quantized with scale %g, zero point %d", path, scale, zero)

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(batch)
        if self._input_quant is not None:
            scale, zero = self._input_quant
            x = np.clip(np.round(x.astype(np.float32) / scale + zero), 0, 255)
        x = x.astype(self.info.input_dtype, copy=False)
        if self._first_call:  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" here
            self._first_call = False
            with native_stderr_silenced(not log.isEnabledFor(logging.DEBUG)):
                raw = self.runner(**{self.info.input_name: x})
        else:
            raw = self.runner(**{self.info.input_name: x})
        out = {}
        for name in self.info.output_names:
            value = raw[name]
            scale, zero = self._output_quant[name]
            if value.dtype != np.float32 and scale:
                value = (value.astype(np.float32) - zero) * scale
            out[name] = value.astype(np.float32, copy=False)
        return out


class ONNXBackend:
    """An .onnx file run by onnxruntime (CPU)."""

    def __init__(self, path: str, threads: Optional[int] = None):
        _check_file(path)
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("ONNX models need onnxruntime: pip install 'agegender[onnx]'") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one image input, found {[i.name for i in inputs]}")
        dtype = {"tensor(uint8)": "uint8", "tensor(float)": "float32"}.get(inputs[0].type)
        if dtype is None:
            raise ModelError(f"{path}: input type {inputs[0].type} is neither uint8 nor float32")
        self.info = ModelInfo(path, "onnx", inputs[0].name, _check_input_shape(path, inputs[0].shape),
                              dtype, _check_outputs(path, {o.name: o.shape for o in self.session.get_outputs()}))

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(batch).astype(self.info.input_dtype, copy=False)
        values = self.session.run(list(self.info.output_names), {self.info.input_name: x})
        return {name: np.asarray(v, np.float32) for name, v in zip(self.info.output_names, values)}


BACKENDS = {".tflite": TFLiteBackend, ".onnx": ONNXBackend}


def open_model(path: str, threads: Optional[int] = None):
    """The backend for a model file, by its extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in BACKENDS:
        raise ModelError(f"{path}: unknown model type {ext!r}; expected .tflite or .onnx")
    backend = BACKENDS[ext](path, threads)
    log.debug("loaded %s: %s", path, backend.info)
    return backend


def card_path(model_path: str) -> str:
    """The JSON model card beside a model file: model_int8.tflite -> model_int8.tflite.json."""
    return model_path + ".json"
