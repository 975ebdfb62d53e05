"""A face's look as a small vector, to tell faces apart when boxes alone cannot.

Video tracking matches faces frame to frame by where they are; when two faces cross,
when one is hidden for a while, or when a person leaves and comes back, position says
nothing and the look decides. The face is warped exactly as the model's input is cut
(landmarks, else box) to a 64 px canonical crop; the descriptor joins

* the colour of the inner face (eyes to chin): a 16x8x4 hue/saturation/value histogram,
  square-rooted (so the dot product is the Bhattacharyya coefficient), weight 0.8, and
* the layout of the whole crop: a 12x12 grey thumbnail, mean removed, weight 0.2,

as one unit vector; similarity is their dot product. On UTKFace test faces pasted three times
each at random places and sizes (110-200 px) and found by YuNet, the same face scored at least
0.917 against itself and two different faces at most 0.860, over 59 faces
(``benchmarks/appearance_check.py``); ``REID_SIMILARITY`` sits between. Cheap (about 0.05 ms) and pure numpy/cv2; it is not a face recogniser:
strong changes of light or pose move it.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from agegender.edge.contract import InputContract, face_transform

CANONICAL = 64  # px: the canonical crop is warped at this side
INNER = (slice(10, 54), slice(13, 51))  # rows, columns of the inner face in that crop
HIST_BINS = (16, 8, 4)  # hue, saturation, value
THUMBNAIL = 12
COLOUR_WEIGHT = 0.8
REID_SIMILARITY = 0.89  # a face this like a remembered one is taken to be it, wherever it is


def face_descriptor(image_rgb: np.ndarray, contract: InputContract, landmarks=None,
                    box: Optional[Sequence[float]] = None) -> np.ndarray:
    """A unit vector describing one face of a frame (see the module docstring)."""
    matrix = np.asarray(face_transform(contract, landmarks, box), np.float32) * (CANONICAL / contract.canonical_size)
    crop = cv2.warpAffine(image_rgb, matrix, (CANONICAL, CANONICAL), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)
    hsv = cv2.cvtColor(np.ascontiguousarray(crop[INNER]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    hist = np.sqrt(hist / max(hist.sum(), 1.0))
    hist /= np.linalg.norm(hist) + 1e-6
    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (THUMBNAIL, THUMBNAIL),
                      interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    grey -= grey.mean()
    grey /= np.linalg.norm(grey) + 1e-6
    return np.concatenate([np.sqrt(COLOUR_WEIGHT) * hist, np.sqrt(1 - COLOUR_WEIGHT) * grey])


def similarity(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> float:
    """Cosine similarity of two descriptors (1 the same look); 0 when either is missing."""
    if a is None or b is None:
        return 0.0
    return float(np.dot(a, b))
