"""A light IoU tracker that gives each face an id across frames and smooths its estimates.

Greedy matching by box overlap (IoU) frame to frame; a face keeps its id while it
is matched, and its track is dropped after ``max_missed`` frames without a match,
so the tracker's state stays bounded however many faces come and go.

Smoothing: an exponential moving average of the age distribution's mean and spread
and of the female probability, so the numbers on the overlay do not flicker. Each
frame's weight is ``smoothing`` times that face's quality in that frame (from its
landmarks: pose and size), so a frame where the face is turned away barely moves the
track's estimate, and a frontal one moves it most.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

MIN_QUALITY_WEIGHT = 0.002  # a profile frame moves a track next to nothing


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _value(x) -> Optional[float]:
    return None if x is None else float(x)


def blend(old: Optional[float], new, weight: float) -> Optional[float]:
    """Moving average of a value a model may not predict (None stays None)."""
    if new is None:
        return old
    return float(new) if old is None else (1 - weight) * old + weight * float(new)


@dataclasses.dataclass
class Track:
    id: int
    box: tuple
    age: Optional[float]  # None for models without that head
    age_std: Optional[float]
    female_prob: Optional[float]
    hits: int = 1
    missed: int = 0


class IoUTracker:
    """Assigns ids to per-frame detections and smooths age / gender per id."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10, smoothing: float = 0.3):
        """smoothing: weight of the newest frame in the moving average (1 = no smoothing)."""
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.alpha = smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: Sequence[Sequence[float]], ages: Sequence[float], age_stds: Sequence[float],
               female_probs: Sequence[float], qualities: Optional[Sequence[float]] = None) -> list[Track]:
        """Match this frame's faces to tracks; returns one (smoothed) track per face, in input order.

        qualities: each face's quality in [0, 1] (None: all 1); it scales the frame's weight."""
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks)
                        for bi, b in enumerate(boxes)), reverse=True)
        track_of: dict[int, Track] = {}
        used = set()
        for overlap, ti, bi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used or bi in track_of:
                continue
            used.add(ti)
            track_of[bi] = self.tracks[ti]
        out = []
        for bi, box in enumerate(boxes):
            a = self.alpha * (1.0 if qualities is None else max(MIN_QUALITY_WEIGHT, float(qualities[bi])))
            track = track_of.get(bi)
            if track is None:
                track = Track(self._next_id, tuple(box), _value(ages[bi]), _value(age_stds[bi]),
                              _value(female_probs[bi]))
                self._next_id += 1
                self.tracks.append(track)
            else:
                track.box = tuple(box)
                track.age = blend(track.age, ages[bi], a)
                track.age_std = blend(track.age_std, age_stds[bi], a)
                track.female_prob = blend(track.female_prob, female_probs[bi], a)
                track.hits += 1
                track.missed = 0
            out.append(track)
        matched = {id(t) for t in out}
        for track in self.tracks:
            if id(track) not in matched:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

    def reset(self) -> None:
        self.tracks = []

    def __len__(self) -> int:
        return len(self.tracks)
