"""The input contract: the one definition of what a model sees.

Training, calibration, export and the edge runtime all build their model inputs
through this module, so a face crop fed to the model on a Raspberry Pi looks
exactly like the crops the model was trained on.

The contract:

* The training images are UTKFace "aligned & cropped" faces: 200x200 RGB, the face
  centred with a fixed margin. That 200x200 picture is the *canonical crop*.
* A model input is the canonical crop resized to ``size`` x ``size`` with
  ``cv2.INTER_AREA``, uint8, RGB channel order, NHWC. The model rescales inside its
  graph, so every runtime feeds raw pixel values.
* In a camera frame, a face is warped to the canonical crop with a similarity
  transform that maps the detector's 5 landmarks (right eye, left eye, nose tip,
  right mouth corner, left mouth corner, as YuNet orders them) onto the
  ``template``: where those landmarks sit, on average, in the training crops
  (measured by ``agegender.train.template``). Without landmarks, a box-based crop
  with the equivalent margin is used (``box_margin``).

This module is pure numpy + OpenCV: the edge runtime imports it without TensorFlow.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import cv2
import numpy as np

CANONICAL_SIZE = 200
COLOUR_ORDER = "RGB"
AGE_BINS = 101  # ages 0..100; older labels are clipped to 100

# Median landmark positions in UTKFace crops, as fractions of the canonical crop
# (x, y), in YuNet's order: right eye, left eye (as the face sees them; image left
# first), nose tip, right and left mouth corners. Measured with YuNet on 2,000
# training-split crops (1,998 with one face) by
#   python -m agegender.train.template --data DIR --detector-model yunet.onnx
# Every model card stores the template its model was trained with.
DEFAULT_TEMPLATE = (
    (0.2935, 0.2882),
    (0.6827, 0.2936),
    (0.4748, 0.5003),
    (0.3155, 0.6795),
    (0.6442, 0.6856),
)
# With no landmarks (box detectors), the canonical crop is the detector box grown
# by this factor around its centre (same measurement: YuNet's box covers almost
# the whole UTKFace crop, the crops are tight) ...
DEFAULT_BOX_MARGIN = 1.025
# ... and moved down by this fraction of the box height.
DEFAULT_BOX_SHIFT = 0.01


@dataclasses.dataclass(frozen=True)
class AgeGroups:
    """Named age groups with inclusive lower bounds, e.g. child 0-12 ... senior 60+."""

    names: tuple[str, ...] = ("child", "teenager", "adult", "senior")
    lower_bounds: tuple[int, ...] = (0, 13, 20, 60)

    def __post_init__(self):
        if len(self.names) != len(self.lower_bounds) or not self.names:
            raise ValueError("age groups need one lower bound per name")
        if list(self.lower_bounds) != sorted(self.lower_bounds) or self.lower_bounds[0] != 0:
            raise ValueError(f"age group bounds must rise from 0, got {self.lower_bounds}")

    @classmethod
    def parse(cls, spec: str) -> "AgeGroups":
        """Parse ``"child:0,teenager:13,adult:20,senior:60"``."""
        names, bounds = [], []
        for item in spec.split(","):
            name, _, bound = item.partition(":")
            if not name or not bound.strip().isdigit():
                raise ValueError(f"bad age group {item!r}; expected name:lower_bound")
            names.append(name.strip())
            bounds.append(int(bound))
        return cls(tuple(names), tuple(bounds))

    def index_of(self, ages) -> np.ndarray:
        """Group index of each age (vectorised)."""
        return np.searchsorted(np.asarray(self.lower_bounds), np.asarray(ages), side="right") - 1

    def name_of(self, age: float) -> str:
        return self.names[int(self.index_of([age])[0])]

    def probabilities(self, age_distribution: np.ndarray) -> np.ndarray:
        """Sum an (N, 101) age distribution into (N, n_groups) group probabilities."""
        dist = np.asarray(age_distribution, dtype=np.float64)
        groups = self.index_of(np.arange(dist.shape[-1]))
        out = np.zeros(dist.shape[:-1] + (len(self.names),))
        for g in range(len(self.names)):
            out[..., g] = dist[..., groups == g].sum(-1)
        return out

    def spans(self) -> list[str]:
        ends = [b - 1 for b in self.lower_bounds[1:]]
        return [f"{lo}-{hi}" for lo, hi in zip(self.lower_bounds, ends)] + [f"{self.lower_bounds[-1]}+"]


@dataclasses.dataclass(frozen=True)
class InputContract:
    """What a model expects as input, and how to cut it from a picture."""

    size: int = 128
    colour_order: str = COLOUR_ORDER
    canonical_size: int = CANONICAL_SIZE
    template: tuple[tuple[float, float], ...] = DEFAULT_TEMPLATE
    box_margin: float = DEFAULT_BOX_MARGIN
    box_shift: float = DEFAULT_BOX_SHIFT
    age_groups: AgeGroups = AgeGroups()

    def __post_init__(self):
        if self.size < 16:
            raise ValueError(f"input size must be at least 16 px, got {self.size}")
        if len(self.template) != 5:
            raise ValueError("the crop template needs 5 landmarks")

    # --- serialisation (model cards; read back by agegender.edge.card.contract_from) ---
    def to_dict(self) -> dict:
        return {
            "size": self.size,
            "shape": [1, self.size, self.size, 3],
            "layout": "NHWC",
            "dtype": "uint8 pixel values 0..255 (float32 models take the same values as float32)",
            "colour_order": self.colour_order,
            "canonical_size": self.canonical_size,
            "resize": "cv2.INTER_AREA from the canonical crop",
            "template": [list(map(float, p)) for p in self.template],
            "template_points": ["right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left"],
            "box_margin": self.box_margin,
            "box_shift": self.box_shift,
            "age_groups": dict(zip(self.age_groups.names, self.age_groups.lower_bounds)),
        }

    def with_size(self, size: int) -> "InputContract":
        return dataclasses.replace(self, size=size)


# --- pure pre-processing functions --------------------------------------------

def to_rgb_uint8(image: np.ndarray, bgr: bool = True) -> np.ndarray:
    """Any OpenCV-decoded picture (grey, BGR, BGRA, 16-bit) as 8-bit RGB (or BGR kept as BGR when bgr=False)."""
    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    elif bgr:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


COLOUR_ORDERS = ("RGB", "BGR")


def as_rgb_picture(image, colour: str = "RGB") -> np.ndarray:
    """A picture array from a user, as contiguous 8-bit RGB; a clear PictureError when it cannot be.

    Accepts grey (H, W) or (H, W, 1), colour (H, W, 3) in ``colour`` order ("RGB", or "BGR" as
    ``cv2.imread`` returns), with alpha (H, W, 4: RGBA or BGRA, alpha dropped), uint8 or uint16;
    the conversion itself is ``to_rgb_uint8``'s, as for pictures read from files.
    """
    from agegender.edge.errors import PictureError

    colour = str(colour).upper()
    if colour not in COLOUR_ORDERS:
        raise PictureError(f"colour must be one of {', '.join(COLOUR_ORDERS)}, got {colour!r}")
    img = np.asarray(image) if image is not None else None
    if img is None or img.size == 0:
        raise PictureError("empty picture: no pixels")
    if img.dtype not in (np.uint8, np.uint16):
        raise PictureError(f"pictures must be 8-bit (uint8) pixels 0..255, got {img.dtype}"
                           + (": for floats in 0..1 pass (image * 255).round().astype(np.uint8)"
                              if img.dtype.kind == "f" else ""))
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 3, 4))):
        raise PictureError(f"expected a picture of shape (H, W), (H, W, 3) or (H, W, 4), got {img.shape}")
    return to_rgb_uint8(img, bgr=colour == "BGR")


def crop_to_input(canonical_crop: np.ndarray, size: int) -> np.ndarray:
    """The model input from a canonical (UTKFace-style) RGB crop: SxS uint8 RGB."""
    crop = np.asarray(canonical_crop)
    if crop.shape[0] == size and crop.shape[1] == size:
        return np.ascontiguousarray(crop)
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


def landmark_transform(landmarks: np.ndarray, contract: InputContract) -> np.ndarray:
    """2x3 similarity transform taking frame landmarks (5, 2) onto the template."""
    src = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    dst = np.asarray(contract.template, dtype=np.float32) * contract.canonical_size
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks: fall back to a least-squares fit
        matrix = _similarity_lstsq(src, dst)
    return matrix


def _similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama-style least-squares similarity (no reflection)."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag([1.0, sign]) @ vt
    var = (s ** 2).sum() / len(src)
    scale = (sig * np.array([1.0, sign])).sum() / var if var > 0 else 1.0
    matrix = np.zeros((2, 3), np.float32)
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


def box_transform(box: Sequence[float], contract: InputContract) -> np.ndarray:
    """2x3 transform taking a detector box (x, y, w, h) to the canonical crop."""
    x, y, w, h = map(float, box)
    side = max(w, h) * contract.box_margin
    cx, cy = x + w / 2, y + h / 2 + contract.box_shift * h
    scale = contract.canonical_size / side
    return np.array([[scale, 0, contract.canonical_size / 2 - scale * cx],
                     [0, scale, contract.canonical_size / 2 - scale * cy]], np.float32)


def warp_to_canonical(image_rgb: np.ndarray, matrix: np.ndarray, contract: InputContract) -> np.ndarray:
    """Warp a frame to the canonical crop; outside the frame is padded by replicating the border.

    A large face (shrunk by more than 1.5x) is warped at its own resolution first and
    then shrunk with INTER_AREA, as a plain bilinear warp would alias.
    """
    size = contract.canonical_size
    matrix = np.asarray(matrix, np.float32)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 1 / 1.5:
        up = min(1.0 / scale, 4.0)
        big = cv2.warpAffine(image_rgb, matrix * up, (int(size * up), int(size * up)),
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def face_transform(contract: InputContract, landmarks=None, box=None) -> np.ndarray:
    """The 2x3 transform from a frame to the canonical crop of one face: by landmarks, else by box."""
    if landmarks is not None:
        return landmark_transform(landmarks, contract)
    if box is not None:
        return box_transform(box, contract)
    raise ValueError("need landmarks or a box to cut a face")


def face_input(image_rgb: np.ndarray, contract: InputContract, landmarks=None, box=None) -> np.ndarray:
    """The model input for one face of a frame: aligned by landmarks, or by box."""
    return crop_to_input(warp_to_canonical(image_rgb, face_transform(contract, landmarks, box), contract), contract.size)


def canonical_input(crop: np.ndarray, contract: InputContract, landmarks=None) -> np.ndarray:
    """The model input for a canonical (UTKFace-style) crop: resized as it is, or, given the
    crop's own landmarks, re-aligned onto the template exactly as a camera face would be."""
    if landmarks is None:
        return crop_to_input(crop, contract.size)
    return face_input(crop, contract, landmarks=landmarks)


# --- alignment views: one face cut a few slightly different ways ---------------
# (scale about the crop's centre, shift right, shift down as fractions of the crop side). The first
# is the face as aligned; ``views=N`` uses the first N. Averaging a face's answers over them makes
# the answer depend less on exactly where its landmarks fell: on 300 validation faces per dataset,
# the median age spread across detector sizes and landmark jitter went 1.19 -> 0.71 y (UTKFace) and
# 1.23 -> 0.76 y (AAF) with 5 views, gender flips 28 -> 20 and 31 -> 14 (benchmarks/accuracy.md).
# Wider nudges (scale ±10%, shifts 4%) and 9 views measured no better.
ALIGNMENT_VIEWS = ((1.0, 0.0, 0.0), (0.95, 0.02, 0.02), (0.95, -0.02, -0.02), (1.05, 0.02, -0.02),
                   (1.05, -0.02, 0.02))


def check_views(views: int) -> int:
    """``views`` as a valid count of alignment views (1..5), or a one-line ValueError."""
    if not isinstance(views, (int, np.integer)) or not 1 <= views <= len(ALIGNMENT_VIEWS):
        raise ValueError(f"views must be a whole number from 1 to {len(ALIGNMENT_VIEWS)}, got {views!r}")
    return int(views)


def view_transforms(matrix: np.ndarray, canonical_size: int, views: int = 1) -> list[np.ndarray]:
    """The 2x3 transform of a face, nudged in the canonical crop by each of the first ``views``
    alignment views (the first is the transform itself)."""
    base = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    centre = canonical_size / 2.0
    out = []
    for scale, dx, dy in ALIGNMENT_VIEWS[:check_views(views)]:
        nudge = np.array([[scale, 0.0, centre * (1 - scale) + dx * canonical_size],
                          [0.0, scale, centre * (1 - scale) + dy * canonical_size]])
        out.append((nudge @ base).astype(np.float32))
    return out


def face_inputs(image_rgb: np.ndarray, contract: InputContract, landmarks=None, box=None, views: int = 1) -> np.ndarray:
    """(views, S, S, 3): the model inputs for one face of a frame, one per alignment view; the first
    is ``face_input``'s."""
    if check_views(views) == 1:
        return face_input(image_rgb, contract, landmarks, box)[None]
    matrices = view_transforms(face_transform(contract, landmarks, box), contract.canonical_size, views)
    return np.stack([crop_to_input(warp_to_canonical(image_rgb, m, contract), contract.size) for m in matrices])


def canonical_inputs(crop: np.ndarray, contract: InputContract, landmarks=None, views: int = 1) -> np.ndarray:
    """(views, S, S, 3): ``canonical_input`` for each alignment view; a crop without landmarks is
    nudged as the canonical crop it already is."""
    if check_views(views) == 1:
        return canonical_input(crop, contract, landmarks)[None]
    if landmarks is not None:
        return face_inputs(crop, contract, landmarks=landmarks, views=views)
    h, w = crop.shape[:2]
    as_canonical = np.array([[contract.canonical_size / w, 0, 0], [0, contract.canonical_size / h, 0]], np.float32)
    matrices = view_transforms(as_canonical, contract.canonical_size, views)
    return np.stack([crop_to_input(warp_to_canonical(crop, m, contract), contract.size) for m in matrices])
