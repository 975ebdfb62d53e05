"""The Python API: ``Estimator(model=..., detector=...).predict(image)``.

    from agegender.edge import Estimator
    estimator = Estimator()                      # shipped int8 TFLite + YuNet (or Haar)
    for face in estimator.predict(rgb_image):
        print(face.box, face.age, face.age_std, face.age_group, face.gender, face.gender_prob)

One frame goes: detect faces -> skip tiny ones, keep the ``max_faces`` largest ->
warp each to the canonical crop (landmarks, or box without them) -> resize to the
model's input -> one inference per batch -> decode (age mean/spread, group, gender).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Optional, Sequence

import numpy as np

from agegender.edge.backends import ModelError, card_path, open_model
from agegender.edge.contract import InputContract, as_rgb_picture, crop_to_input, face_input
from agegender.edge.detectors import Detection, create_detector
from agegender.edge.postprocess import AgeGender, decode
from agegender.edge.quality import FaceQuality, face_quality
from agegender.edge.zoo import default_model_path

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Face:
    """One face found in a picture, with what the model says about it."""

    box: tuple[int, int, int, int]  # x, y, w, h in the picture
    score: float  # detector confidence (1.0 for --aligned crops)
    age: float
    age_std: float
    age_group: str
    gender: str
    gender_prob: float
    female_prob: float
    id: Optional[int] = None  # track id (video), None for still pictures
    quality: Optional[FaceQuality] = None  # pose and size from the landmarks; None without landmarks

    def label(self) -> str:
        return f"{self.age:.0f} ± {self.age_std:.0f} · {self.gender[0].upper()} {self.gender_prob:.2f}"

    def to_dict(self) -> dict:
        out = {"id": self.id, "box": [int(v) for v in self.box], "score": round(self.score, 4),
               "age": round(self.age, 2), "age_std": round(self.age_std, 2), "age_group": self.age_group,
               "gender": self.gender, "gender_prob": round(self.gender_prob, 4)}
        if self.quality is not None:
            out["quality"] = self.quality.to_dict()
        return out


def clip_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """A detector box (x, y, w, h) as whole pixels inside the picture (detectors reach past the edges)."""
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def widen_for_quality(result: AgeGender, quality: Optional[FaceQuality]) -> AgeGender:
    """A face seen poorly (turned away, tiny) gets a wider age spread: up to twice as wide at quality 0."""
    if quality is None:
        return result
    return dataclasses.replace(result, age_std=result.age_std * (2.0 - quality.score))


def load_contract(model_path: str, info) -> InputContract:
    """The input contract from the model's card (checked against the model), or the defaults
    for its input size when there is no card."""
    path = card_path(model_path)
    if not os.path.isfile(path):
        log.info("%s has no model card beside it: using the default input contract", model_path)
        return InputContract(size=info.input_size)
    try:
        with open(path) as f:
            card = json.load(f)
        contract = InputContract.from_dict(card["input"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable model card ({exc})") from None
    if contract.size != info.input_size:
        raise ModelError(f"{model_path}: takes {info.input_size}x{info.input_size} px but its card {path} says "
                         f"{contract.size} px: the card belongs to another model")
    missing = set(card.get("outputs", {})) - set(info.output_names)
    if missing:
        raise ModelError(f"{model_path}: lacks the outputs {sorted(missing)} that its card {path} lists "
                         f"(it has {list(info.output_names)}): the card belongs to another model")
    return contract


# The detector sees frames downscaled to this longest side: 320 px finds every face of the
# project's test photos, as 640 does, and detection takes 5.4 instead of 9.6 ms per 640x480
# frame at 1 thread (benchmarks/edge.md, benchmarks/README.md).
DETECT_MAX_SIDE = 320


class Estimator:
    """Faces, ages and genders from RGB pictures."""

    def __init__(self, model: Optional[str] = None, detector=None, threads: Optional[int] = None,
                 max_faces: int = 10, min_face: int = 24, detect_max_side: Optional[int] = None,
                 score_threshold: float = 0.7, flip: bool = False):
        """model: .tflite/.onnx path (default: the shipped int8 TFLite).
        detector: a detector object, or a YuNet .onnx path, or None to find YuNet (else Haar).
        flip: also run every face mirrored and average the two answers (twice the model time)."""
        self.model_path = model or default_model_path()
        self.backend = open_model(self.model_path, threads)
        self.contract = load_contract(self.model_path, self.backend.info)
        self._detector = detector
        self._detector_options = dict(max_side=detect_max_side or DETECT_MAX_SIDE, score_threshold=score_threshold)
        if isinstance(detector, str):
            self.detector  # a named detector file is checked at once
        self.max_faces = max_faces
        self.min_face = min_face
        self.batch_one = self.backend.info.format == "tflite"
        self.flip = flip
        self.timings: dict[str, float] = {}

    @property
    def detector(self):
        """The face detector, made on first use: pictures that are already face crops
        (``predict(..., aligned=True)``) never need one, nor the Haar fallback's warning."""
        if self._detector is None or isinstance(self._detector, str):
            self._detector = create_detector(self._detector, **self._detector_options)
        return self._detector

    # --- the steps, each usable on its own -----------------------------------
    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        faces = [d for d in self.detector.detect(image_rgb) if min(d.box[2], d.box[3]) >= self.min_face]
        faces.sort(key=lambda d: d.box[2] * d.box[3], reverse=True)
        return faces[: self.max_faces]

    def align(self, image_rgb: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        crops = [face_input(image_rgb, self.contract, landmarks=d.landmarks, box=d.box) for d in detections]
        return np.stack(crops) if crops else np.zeros((0, self.contract.size, self.contract.size, 3), np.uint8)

    def infer(self, inputs: np.ndarray) -> list[AgeGender]:
        """Model inputs (N, S, S, 3) uint8 -> decoded results."""
        if len(inputs) == 0:
            return []
        raw = self.run_model(inputs)
        if self.flip:  # test-time augmentation: the mirrored face, averaged in
            mirrored = self.run_model(np.ascontiguousarray(inputs[:, :, ::-1]))
            raw = {k: (np.asarray(v, np.float64) + np.asarray(mirrored[k], np.float64)) / 2 for k, v in raw.items()}
        return decode(raw.get("age"), raw.get("gender"), self.contract.age_groups)

    def run_model(self, inputs: np.ndarray) -> dict:
        if self.batch_one:
            outs = [self.backend.predict(x[None]) for x in inputs]
            return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        return self.backend.predict(inputs)

    # --- the one obvious method ------------------------------------------------
    def predict(self, image: np.ndarray, aligned: bool = False, colour: str = "RGB") -> list[Face]:
        """Faces in a picture; with aligned=True the picture already is a training-style face crop.

        colour: the channel order of a 3- or 4-channel picture, "RGB" (default) or "BGR" (what
        ``cv2.imread`` gives); grey pictures need none. Empty, float or oddly shaped arrays raise
        ``PictureError``. ``agegender.edge.images.read_image(path)`` reads a file as RGB."""
        image_rgb = as_rgb_picture(image, colour)
        t0 = time.perf_counter()
        if aligned:
            h, w = image_rgb.shape[:2]
            detections = [Detection((0, 0, w, h), 1.0)]
            inputs = crop_to_input(image_rgb, self.contract.size)[None]
            t1 = t2 = time.perf_counter()
        else:
            detections = self.detect(image_rgb)
            t1 = time.perf_counter()
            inputs = self.align(image_rgb, detections)
            t2 = time.perf_counter()
        results = self.infer(inputs)
        t3 = time.perf_counter()
        self.timings = {"detect": t1 - t0, "align": t2 - t1, "infer": t3 - t2}
        faces = []
        height, width = image_rgb.shape[:2]
        for d, r in zip(detections, results):
            quality = face_quality(d.landmarks) if d.landmarks is not None else None
            r = widen_for_quality(r, quality)
            faces.append(Face(clip_box(d.box, width, height), d.score, r.age, r.age_std, r.age_group,
                              r.gender, r.gender_prob, r.female_prob, quality=quality))
        return faces

