"""Augmentation that imitates cheap cameras and old photos.

UTKFace and AAF crops are mostly sharp, well-exposed colour photos; the faces a Pi
camera sees are small, noisy, blurred, oddly white-balanced and JPEG-compressed, and
users also point it at printed or old photos (grey, sepia). Each *family* below is
applied with its own probability, so a batch mixes clean and degraded faces:

==========  ==================================================================
``colour``  white balance (per-channel gain) and exposure (gain + gamma)
``grey``    greyscale, or sepia toning (old photos)
``lowres``  the face shrunk to 30-60 px and scaled back up (distant faces)
``blur``    Gaussian (focus) or linear motion blur
``noise``   sensor noise: shot noise that grows with brightness, plus read noise
``jpeg``    JPEG at quality 15-60
``jitter``  stronger landmark noise and detector-scale variation in the camera
            path (``camera_view``), on top of the default re-alignment jitter
==========  ==================================================================

``--augment`` picks the families (``none``, ``all`` or a comma list); the ablation in
``benchmarks/accuracy.md`` measures what each buys. All functions are pure: image in,
image out, randomness from the ``numpy`` generator passed in.
"""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

FAMILIES = ("colour", "grey", "lowres", "blur", "noise", "jpeg", "jitter")
# how often each family is applied to a training face
PROBABILITY = {"colour": 0.5, "grey": 0.12, "lowres": 0.2, "blur": 0.2, "noise": 0.25, "jpeg": 0.3}
# the camera path's parameters: (scale range, max rotation, landmark noise as a fraction of the face)
CAMERA_DEFAULT = ((0.45, 1.4), 15.0, 0.012)
CAMERA_JITTER = ((0.3, 1.6), 20.0, 0.022)


def parse_families(text: str) -> tuple[str, ...]:
    """``"all"``, ``"none"`` or a comma list of FAMILIES."""
    text = (text or "none").strip().lower()
    if text == "all":
        return FAMILIES
    if text in ("none", ""):
        return ()
    chosen = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown augmentation famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}; choose from {', '.join(FAMILIES)}, all or none")
    return chosen


def white_balance_exposure(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gains = np.exp(rng.normal(0.0, 0.12, size=3))  # per channel: a warm or cold cast
    gain = np.exp(rng.uniform(-0.5, 0.4))  # exposure
    gamma = np.exp(rng.uniform(-0.3, 0.3))
    x = image.astype(np.float32) / 255.0 * gains * gain
    x = np.power(np.clip(x, 0.0, 1.0), gamma)
    return (x * 255.0 + 0.5).astype(np.uint8)


def grey_or_sepia(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if rng.random() < 0.6:
        return np.repeat(grey[:, :, None], 3, axis=2).astype(np.uint8)
    tone = np.array([1.07, 0.74, 0.43], np.float32) * rng.uniform(0.9, 1.1)  # sepia, RGB
    return np.clip(grey[:, :, None] * tone[None, None], 0, 255).astype(np.uint8)


def low_resolution(image: np.ndarray, rng: np.random.Generator, sides=(30, 60)) -> np.ndarray:
    h, w = image.shape[:2]
    side = int(rng.integers(sides[0], sides[1] + 1))
    small = cv2.resize(image, (side, max(1, round(side * h / w))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    if rng.random() < 0.6:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.5, 1.8) * size / 128)
    length = max(3, int(rng.uniform(3, 9) * size / 128) | 1)
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


def sensor_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = image.astype(np.float32)
    shot = rng.uniform(0.0, 0.6)  # variance grows with the signal
    read = rng.uniform(1.0, 8.0)
    noise = rng.normal(0.0, 1.0, size=x.shape).astype(np.float32) * np.sqrt(shot * x + read ** 2)
    if rng.random() < 0.5:  # luminance noise only (most camera pipelines denoise chroma)
        noise = np.repeat(noise[:, :, :1], 3, axis=2)
    return np.clip(x + noise, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    quality = int(rng.integers(15, 61))
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return image
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def before_alignment(crop: np.ndarray, rng: np.random.Generator, families: Iterable[str]) -> np.ndarray:
    """Degradations of the face as the camera sees it (on the canonical crop, before re-alignment)."""
    families = set(families)
    if "lowres" in families and rng.random() < PROBABILITY["lowres"]:
        crop = low_resolution(crop, rng)
    return crop


def after_alignment(image: np.ndarray, rng: np.random.Generator, families: Iterable[str]) -> np.ndarray:
    """Degradations of the model input: colour, grey/sepia, blur, noise, then JPEG last."""
    families = set(families)
    steps = (("colour", white_balance_exposure), ("grey", grey_or_sepia), ("blur", blur),
             ("noise", sensor_noise), ("jpeg", jpeg))
    for family, fn in steps:
        if family in families and rng.random() < PROBABILITY[family]:
            image = fn(image, rng)
    return np.ascontiguousarray(image)


def camera_parameters(families: Iterable[str]) -> tuple:
    """(scale range, max rotation, landmark noise) for ``camera_view``."""
    return CAMERA_JITTER if "jitter" in set(families) else CAMERA_DEFAULT
