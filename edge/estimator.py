"""The Python API: ``Estimator(model=..., detector=...).predict(image)``.

    from agegender.edge import Estimator
    estimator = Estimator()                      # shipped int8 TFLite + YuNet (or Haar)
    for face in estimator.predict(rgb_image):
        print(face.box, face.age, face.age_std, face.age_group, face.gender, face.gender_prob)

One frame goes: detect faces -> skip tiny ones, keep the ``max_faces`` largest ->
(optionally find each face's landmarks again in its canonical crop) -> warp each to the
canonical crop (landmarks, or box without them) -> resize to the model's input -> one
inference per batch -> decode (age mean/spread, group, gender).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Optional, Sequence

import numpy as np

from agegender.edge.contract import as_rgb_picture, check_views
from agegender.edge.detectors import (CROP_DETECT_MAX_SIDE, Detection, TwoScaleDetector, YuNetDetector,
                                      create_detector, crop_landmarks, detector_like, find_yunet, refine_detection)
from agegender.edge.model import AgeGenderModel
from agegender.edge.postprocess import AgeGender, decide_age_group, decide_gender, result_label
from agegender.edge.quality import FaceQuality, face_quality
from agegender.edge.zoo import default_model_path

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Face:
    """One face found in a picture, with what the model says about it."""

    box: tuple[int, int, int, int]  # x, y, w, h in the picture
    score: float  # detector confidence (1.0 for --aligned crops)
    age: Optional[float]  # None (and age_std None) for a model without an age head
    age_std: Optional[float]
    age_group: Optional[str]
    gender: Optional[str]  # None (and the probabilities None) for a model without a gender head
    gender_prob: Optional[float]
    female_prob: Optional[float]
    id: Optional[int] = None  # track id (video), None for still pictures
    quality: Optional[FaceQuality] = None  # pose and size from the landmarks; None without landmarks

    def label(self) -> str:
        return result_label(self)

    def with_answer(self, track_id: int, age: Optional[float], age_std: Optional[float],
                    female_prob: Optional[float], groups) -> "Face":
        """This face with a track's id and running answer; group and gender decided from it by the
        same rules as one estimate's (``postprocess.decide_age_group``, ``decide_gender``)."""
        gender, gender_prob = decide_gender(female_prob) if female_prob is not None else (None, None)
        group = decide_age_group(age, groups) if age is not None else self.age_group
        return dataclasses.replace(self, id=track_id, age=age, age_std=age_std, age_group=group,
                                   female_prob=female_prob, gender=gender, gender_prob=gender_prob)

    def to_dict(self) -> dict:
        """The JSON Lines form: fields a model does not predict are left out, never NaN."""
        out = {"id": self.id, "box": [int(v) for v in self.box], "score": round(self.score, 4)}
        for key, digits in (("age", 2), ("age_std", 2), ("age_group", None), ("gender", None), ("gender_prob", 4)):
            value = getattr(self, key)
            if value is not None:
                out[key] = round(value, digits) if digits else value
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
    if quality is None or result.age_std is None:
        return result
    return dataclasses.replace(result, age_std=result.age_std * (2.0 - quality.score))


def averaging_label(flip: bool, views: int = 1) -> str:
    """How the answers are averaged, for reports: "" or e.g. "with mirror averaging and 5 alignment views"."""
    parts = [w for w, on in (("mirror averaging", flip), (f"{views} alignment views", views > 1)) if on]
    return "with " + " and ".join(parts) if parts else ""


# The detector sees frames downscaled to this longest side: 320 px finds every face of the
# project's test photos, as 640 does, and detection takes 5.4 instead of 9.6 ms per 640x480
# frame at 1 thread (benchmarks/edge.md, benchmarks/README.md).
DETECT_MAX_SIDE = 320


class Estimator:
    """Faces, ages and genders from RGB pictures."""

    def __init__(self, model: Optional[str] = None, detector=None, threads: Optional[int] = None,
                 max_faces: int = 10, min_face: int = 24, detect_max_side: Optional[int] = None,
                 score_threshold: Optional[float] = None, flip: bool = False, views: int = 1,
                 second_detect_size: Optional[int] = None, refine_landmarks: bool = False, refine_passes: int = 1):
        """model: .tflite/.onnx path (default: the shipped int8 TFLite), or an AgeGenderModel.
        detector: a detector object, or a YuNet .onnx path, or None to find YuNet (else Haar).
        score_threshold: YuNet's confidence threshold (default 0.7; the Haar fallback has none).
        flip: also run every face mirrored and average the two answers (twice the model time).
        views: cut every face this many slightly different ways (1-5, ``contract.ALIGNMENT_VIEWS``) and
        average the answers: steadier under small landmark shifts, ``views`` x the model time.
        second_detect_size: also detect at this longest side and average each face's box and landmarks
        over the two passes (``detectors.TwoScaleDetector``): one more detection per picture.
        refine_landmarks: find each face's landmarks again in its canonical crop, as training found
        them (``detectors.refine_detection``): steadier across detector sizes, one 200 px detection per
        face (about 3.5 ms at 1 thread); needs YuNet (without it faces keep the detector's landmarks).
        refine_passes: how many times to refine (each pass cuts the crop by the last pass's landmarks;
        they settle toward landmarks that no longer depend on the detector's), one detection per face each."""
        if isinstance(model, AgeGenderModel):  # a model object opened elsewhere (e.g. a Keras model, in training)
            self.model, self.model_path = model, model.path
        else:
            self.model_path = model or default_model_path()
            self.model = AgeGenderModel.open(self.model_path, threads)
        self.contract = self.model.contract
        self._crop_landmarker = None
        self._detector = detector
        self._detector_options = dict(max_side=detect_max_side or DETECT_MAX_SIDE, score_threshold=score_threshold)
        self.second_detect_size = second_detect_size
        self.refine_landmarks = refine_landmarks
        if refine_passes < 1:
            raise ValueError(f"refine_passes must be at least 1, not {refine_passes}")
        self.refine_passes = refine_passes
        if isinstance(detector, str):
            _ = self.detector  # a named detector file is checked at once
        self.max_faces = max_faces
        self.min_face = min_face
        self.flip = flip
        self.views = check_views(views)
        # One Estimator may be shared by threads: its detector and interpreter are not thread-safe,
        # so calls take turns (one instance per thread runs them in parallel instead).
        self._lock = threading.RLock()
        self.timings: dict[str, float] = {}

    @property
    def lock(self) -> threading.RLock:
        """Held while the detector or the model runs (they are not thread-safe)."""
        return self._lock

    @property
    def detector_max_side(self) -> int:
        """The longest side, in px, that frames are downscaled to for the detector."""
        return self._detector_options["max_side"]

    @property
    def detector(self):
        """The face detector, made on first use: pictures that are already face crops
        (``predict(..., aligned=True)``) never need one, nor the Haar fallback's warning."""
        if self._detector is None or isinstance(self._detector, str):
            self._detector = create_detector(self._detector, **self._detector_options)
        if self.second_detect_size and not isinstance(self._detector, TwoScaleDetector):
            self._detector = TwoScaleDetector(self._detector, detector_like(self._detector, self.second_detect_size))
        return self._detector

    # --- the steps, each usable on its own -----------------------------------
    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        with self._lock:
            found = self.detector.detect(image_rgb)
        return self.select(found)

    def select(self, detections: Sequence[Detection]) -> list[Detection]:
        """The faces worth estimating: at least ``min_face`` px, the ``max_faces`` largest first."""
        faces = [d for d in detections if min(d.box[2], d.box[3]) >= self.min_face]
        faces.sort(key=lambda d: d.box[2] * d.box[3], reverse=True)
        return faces[: self.max_faces]

    def refine(self, image_rgb: np.ndarray, detections: Sequence[Detection]) -> list[Detection]:
        """With ``refine_landmarks``, each detection with its landmarks found again in its canonical
        crop (``detectors.refine_detection``); else the detections as they are."""
        if not self.refine_landmarks or all(d.landmarks is None for d in detections):
            return list(detections)  # off, or nothing to refine (no faces, or a box detector such as Haar)
        landmarker = self.crop_landmarker()
        if landmarker is None:
            return list(detections)
        refined = list(detections)
        with self._lock:
            for _ in range(self.refine_passes):
                refined = [refine_detection(d, image_rgb, landmarker, self.contract) for d in refined]
        return refined

    def align(self, image_rgb: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """(faces x views, S, S, 3): each detection's model inputs, its ``views`` in a row."""
        crops = [self.model.preprocess(image_rgb, landmarks=d.landmarks, box=d.box, views=self.views)
                 for d in detections]
        return np.concatenate(crops) if crops else np.zeros((0, self.contract.size, self.contract.size, 3), np.uint8)

    def align_crop(self, crop_rgb: np.ndarray) -> np.ndarray:
        """A training-style face crop as the model input: re-aligned by its own landmarks when the
        model was trained on re-aligned crops (and YuNet is at hand), else as it is."""
        landmarks = None
        if self.model.wants_crop_landmarks:
            landmarker = self.crop_landmarker()
            if landmarker is not None:
                landmarks = crop_landmarks(landmarker, crop_rgb)
        return self.model.preprocess_crop(crop_rgb, landmarks, views=self.views)

    def crop_landmarker(self):
        """YuNet at the settings that found the training crops' landmarks, or None without YuNet."""
        if self._crop_landmarker is None:
            detector = getattr(self._detector, "first", self._detector)  # a two-size detector's first pass
            path = detector if isinstance(detector, str) else None
            if isinstance(detector, YuNetDetector):
                path = detector.model_path
            found = find_yunet(path)
            self._crop_landmarker = YuNetDetector(found, max_side=CROP_DETECT_MAX_SIDE) if found else False
            if not found:
                log.info("no YuNet: face crops are fed as they are, not re-aligned by their landmarks")
        return self._crop_landmarker or None

    def infer(self, inputs: np.ndarray, flip: Optional[bool] = None) -> list[AgeGender]:
        """Model inputs (N x views, S, S, 3) uint8, as ``align`` cuts them -> N decoded results; flip:
        this call's choice (None: the estimator's)."""
        if len(inputs) == 0:
            return []
        with self._lock:
            raw = self.model.run(inputs, flip=self.flip if flip is None else flip, views=self.views)
        return self.model.decode(raw)

    # --- the one obvious method ------------------------------------------------
    def predict(self, image: np.ndarray, aligned: bool = False, colour: str = "RGB") -> list[Face]:
        """Faces in a picture; with aligned=True the picture already is a training-style face crop.

        colour: the channel order of a 3- or 4-channel picture, "RGB" (default) or "BGR" (what
        ``cv2.imread`` gives); grey pictures need none. Empty, float or oddly shaped arrays raise
        ``PictureError``. ``agegender.edge.images.read_image(path)`` reads a file as RGB."""
        image_rgb = as_rgb_picture(image, colour)
        with self._lock:  # the timings below are this call's, whatever other threads do
            return self._predict(image_rgb, aligned)

    def _predict(self, image_rgb: np.ndarray, aligned: bool) -> list[Face]:
        t0 = time.perf_counter()
        if aligned:
            h, w = image_rgb.shape[:2]
            detections = [Detection((0, 0, w, h), 1.0)]
            inputs = self.align_crop(image_rgb)
            t1 = t2 = time.perf_counter()
        else:
            detections = self.detect(image_rgb)
            t1 = time.perf_counter()
            detections = self.refine(image_rgb, detections)  # part of aligning (its time too)
            inputs = self.align(image_rgb, detections)
            t2 = time.perf_counter()
        results = self.infer(inputs)
        t3 = time.perf_counter()
        self.timings = {"detect": t1 - t0, "align": t2 - t1, "infer": t3 - t2}
        return self.faces_from(image_rgb, detections, results)

    def estimate(self, image_rgb: np.ndarray, detections: Sequence[Detection]) -> list[Face]:
        """Faces for detections found elsewhere (another detector, moved landmarks): align, infer,
        quality, exactly as ``predict`` does after detecting."""
        with self._lock:
            return self.faces_from(image_rgb, detections, self.infer(self.align(image_rgb, detections)))

    @staticmethod
    def faces_from(image_rgb: np.ndarray, detections: Sequence[Detection], results: Sequence[AgeGender]) -> list[Face]:
        """Each detection with its result: box inside the picture, quality from the landmarks, and
        the spread widened for a poor face."""
        faces = []
        height, width = image_rgb.shape[:2]
        for d, r in zip(detections, results):
            quality = face_quality(d.landmarks) if d.landmarks is not None else None
            r = widen_for_quality(r, quality)
            faces.append(Face(clip_box(d.box, width, height), d.score, r.age, r.age_std, r.age_group,
                              r.gender, r.gender_prob, r.female_prob, quality=quality))
        return faces
