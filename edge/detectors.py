"""Face detectors: YuNet (boxes + 5 landmarks) by default, OpenCV's Haar cascade as a fallback.

The YuNet file is found from an explicit path, the ``AGEGENDER_DETECTOR``
environment variable, or the user cache (``agegender models fetch`` puts it there);
it is never downloaded implicitly. Both detectors run on a frame downscaled to at
most ``max_side`` pixels and map their boxes back to the full frame.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Optional

import cv2
import numpy as np

from agegender.edge.contract import InputContract, face_transform, warp_to_canonical
from agegender.edge.errors import AgeGenderError
from agegender.edge.files import file_from, sha256_file
from agegender.edge.tracker import iou

log = logging.getLogger(__name__)

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
YUNET_URL = ("https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
             "face_detection_yunet_2023mar.onnx")
DETECTOR_ENV = "AGEGENDER_DETECTOR"


@dataclasses.dataclass
class Detection:
    """One face in frame coordinates."""

    box: tuple[float, float, float, float]  # x, y, w, h
    score: float
    landmarks: Optional[np.ndarray] = None  # (5, 2): right eye, left eye, nose, mouth right, mouth left


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "agegender")


def find_yunet(explicit: Optional[str] = None) -> Optional[str]:
    """The YuNet model path: explicit > $AGEGENDER_DETECTOR > user cache; None if none exists.

    A bare file name that is not in the working folder is looked up in the user cache, where
    `agegender models fetch` puts it (so ``Estimator(detector="face_detection_yunet_2023mar.onnx")``
    works after a fetch)."""
    if explicit and not os.path.exists(explicit) and os.path.basename(explicit) == explicit:
        cached = os.path.join(cache_dir(), explicit)
        if os.path.isfile(cached):
            return cached
        raise AgeGenderError(f"{explicit}: detector model not found here nor in {cache_dir()} "
                             "(get it with `agegender models fetch`)")
    found = file_from(explicit, DETECTOR_ENV, "detector model")
    if found:
        return found
    cached = os.path.join(cache_dir(), YUNET_FILE)
    if not os.path.isfile(cached):
        return None
    if sha256_file(cached) != YUNET_SHA256:  # the cache is ours: what is there must be what we fetched
        raise AgeGenderError(f"{cached}: the cached YuNet file is corrupt (its sha256 is not the published one); "
                             "run `agegender models fetch` again")
    return cached


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    return image, scale


class YuNetDetector:
    """OpenCV's YuNet face detector (``cv2.FaceDetectorYN``)."""

    name = "yunet"

    def __init__(self, model_path: str, score_threshold: float = 0.7, nms_threshold: float = 0.3,
                 max_side: int = 640, top_k: int = 100):
        try:
            self.net = cv2.FaceDetectorYN.create(model_path, "", (320, 320), score_threshold, nms_threshold, top_k)
        except cv2.error as exc:
            raise AgeGenderError(f"{model_path}: not a YuNet detector model ({str(exc).strip()[:120]})") from None
        self.max_side = max_side
        self.model_path = model_path
        self.score_threshold = score_threshold
        self._size = (320, 320)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        small, scale = _downscale(image_rgb, self.max_side)
        h, w = small.shape[:2]
        if (w, h) != self._size:
            self.net.setInputSize((w, h))
            self._size = (w, h)
        _, faces = self.net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        out = []
        for row in faces:
            box = tuple(float(v) / scale for v in row[:4])
            landmarks = row[4:14].reshape(5, 2).astype(np.float32) / scale
            out.append(Detection(box, float(row[14]), landmarks))
        return out


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade: boxes only, no landmarks.

    Its boxes are mapped to YuNet's box geometry, so the contract's box-based crop
    (box_margin, box_shift, measured with YuNet) cuts the same face region: on the 16
    faces both detectors find in the project's test photos, YuNet's box side is 1.135x
    Haar's (median) and its centre 0.014 box heights lower. Reproduce with
    ``python benchmarks/haar_constants.py --photos DIR --detector-model yunet.onnx``.
    """

    name = "haar"
    to_yunet_scale = 1.135
    to_yunet_shift = 0.014

    def __init__(self, max_side: int = 640, min_neighbors: int = 5):
        path = os.path.join(getattr(cv2, "data", None).haarcascades if hasattr(cv2, "data") else "",
                            "haarcascade_frontalface_default.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise AgeGenderError("no face detector: the Haar cascade is missing from this OpenCV "
                                 "(OpenCV 5 dropped it); run `agegender models fetch` to get YuNet")
        self.max_side = max_side
        self.min_neighbors = min_neighbors

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        small, scale = _downscale(image_rgb, self.max_side)
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        boxes, _, weights = self.cascade.detectMultiScale3(
            grey, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(24, 24), outputRejectLevels=True)
        out = []
        for (x, y, w, h), weight in zip(boxes, np.ravel(weights) if len(boxes) else []):
            score = float(1 / (1 + np.exp(-float(weight) / 2)))  # cascade confidence squashed to 0..1
            cx, cy = (x + w / 2) / scale, (y + h / 2 + self.to_yunet_shift * h) / scale
            side_w, side_h = w * self.to_yunet_scale / scale, h * self.to_yunet_scale / scale
            out.append(Detection((cx - side_w / 2, cy - side_h / 2, side_w, side_h), score))
        return out


def detector_like(detector, max_side: Optional[int] = None, score_threshold: Optional[float] = None):
    """A new YuNet or Haar detector like ``detector`` (same file, threshold and size) but for the settings
    given; each has its own network, so the two can run at different input sizes. A YuNet threshold
    does not apply to Haar."""
    max_side = max_side or detector.max_side
    if isinstance(detector, YuNetDetector):
        threshold = detector.score_threshold if score_threshold is None else score_threshold
        return YuNetDetector(detector.model_path, threshold, max_side=max_side)
    if isinstance(detector, HaarDetector):
        return HaarDetector(max_side=max_side, min_neighbors=detector.min_neighbors)
    raise AgeGenderError(f"cannot make another detector like a {type(detector).__name__}: YuNet or Haar only")


class TwoScaleDetector:
    """One detector run at two sizes for still pictures: the faces are the first pass's; where the
    second pass finds the same face (IoU >= 0.5), its box and landmarks are the mean of the two.

    Each pass places the 5 landmarks a little differently (the face is a different number of
    pixels to it); their mean is a steadier alignment than either (``benchmarks/stability.py
    --second-detect-size``). One extra detection per picture, no extra model time."""

    match_iou = 0.5

    def __init__(self, first, second):
        self.first, self.second = first, second
        self.name = getattr(first, "name", "detector")
        self.max_side = first.max_side

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        faces = self.first.detect(image_rgb)
        if not faces:
            return faces
        others = self.second.detect(image_rgb)
        return [mean_detection(face, others, self.match_iou) for face in faces]


def mean_detection(face: Detection, others: list[Detection], match_iou: float) -> Detection:
    """``face`` with its box and landmarks averaged with its best match among ``others`` (if any
    overlaps it by ``match_iou`` and has landmarks alike); its own score is kept."""
    match = max(others, key=lambda o: iou(o.box, face.box), default=None)
    if match is None or iou(match.box, face.box) < match_iou or (match.landmarks is None) != (face.landmarks is None):
        return face
    box = tuple((float(a) + float(b)) / 2.0 for a, b in zip(face.box, match.box))
    landmarks = None if face.landmarks is None else ((face.landmarks + match.landmarks) / 2.0).astype(np.float32)
    return Detection(box, face.score, landmarks)


# How the landmarks of a canonical (training-style) face crop are found: the same in training
# (agegender.train.landmarks, cached per crop) and at run time (predict --aligned), so a crop is
# re-aligned identically in both.
CROP_DETECT_MAX_SIDE = 400
CROP_MIN_SCORE = 0.8


def crop_landmarks(detector, crop_rgb: np.ndarray) -> Optional[np.ndarray]:
    """The (5, 2) landmarks of a canonical crop's one clear face, or None (no face, or several)."""
    faces = [d for d in detector.detect(crop_rgb) if d.score >= CROP_MIN_SCORE and d.landmarks is not None]
    return faces[0].landmarks.astype(np.float32) if len(faces) == 1 else None


def refine_detection(face: Detection, image_rgb: np.ndarray, landmarker, contract: InputContract) -> Detection:
    """``face`` with its landmarks found again as training found them: the face is cut to its canonical
    crop (the model's contract, by its landmarks) and ``landmarker`` (YuNet at the crop settings) looks
    for them in that crop, as it did on every training crop (``crop_landmarks``); they are mapped back
    to the picture. Box, score and a face whose crop holds no one clear face are kept as they are.

    A detector places the landmarks of a face that is a different number of pixels to it at each
    detector size; the crop shows the face as training saw it, about 200 px across, whatever the size.
    One 200 x 200 px detection per face."""
    if face.landmarks is None:
        return face
    matrix = face_transform(contract, landmarks=face.landmarks)
    points = crop_landmarks(landmarker, warp_to_canonical(image_rgb, matrix, contract))
    if points is None:
        return face
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    landmarks = points.astype(np.float64) @ inverse[:, :2].T + inverse[:, 2]
    return Detection(face.box, face.score, landmarks.astype(np.float32))


def create_detector(model_path: Optional[str] = None, **kwargs):
    """YuNet when its file can be found, else the Haar cascade with a one-line warning."""
    yunet = find_yunet(model_path)
    if yunet:
        return YuNetDetector(yunet, **{k: v for k, v in kwargs.items() if v is not None})
    log.warning("YuNet face detector not found: falling back to OpenCV's Haar cascade, which is much worse: "
                "it misses faces (16 of 20 on our test photos), finds false ones, gives no landmarks (faces are "
                "not aligned) and ages that swing by decades on video. Get YuNet once with `agegender models "
                "fetch`, or pass --detector-model FILE / set $%s.", DETECTOR_ENV)
    if kwargs.pop("score_threshold", None) is not None:
        log.warning("--score-threshold applies to YuNet only: the Haar fallback has no comparable score "
                    "and ignores it")
    kwargs.pop("nms_threshold", None)
    return HaarDetector(**{k: v for k, v in kwargs.items() if k == "max_side"})
