"""Synthetic videos whose truth is known: labelled face crops moving over a background.

Used by the tests and benchmarks of video mode (``benchmarks/peer_compare.py --videos``):
each scene is a list of actors (a face crop with its age and gender, and a path: where its
square lies in every frame, or nowhere) and optional occluders, rendered in painter's
order (later actors in front) over a smooth, fixed background with a little sensor noise.
Every frame comes with a label map, so a predicted face is scored against the actor whose
visible pixels cover its box, and an actor counts as present (to be found and scored) only
while most of its inner face is in view.

    faces = [ActorFace(crop, age=34, female=True), ...]
    for video in standard_scenes(faces):
        for frame, truth in video:        # truth: FrameTruth (the actors in view, a label map)
            ...
    score_video(predictions, video)      # frame MAE, gender accuracy, faces found, id switches
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np

Position = Optional[tuple[float, float, float]]  # centre x, centre y, side of the square (px), or None
VISIBLE_FRACTION = 0.7  # of the inner face (the square's middle half) for an actor to count as present


@dataclasses.dataclass(frozen=True)
class ActorFace:
    crop: np.ndarray  # a canonical (UTKFace-framed) RGB crop
    age: float
    female: bool
    name: str = ""


@dataclasses.dataclass(frozen=True)
class Actor:
    face: ActorFace
    path: Callable[[int], Position]


@dataclasses.dataclass(frozen=True)
class VisibleActor:
    actor: int
    square: tuple[int, int, int, int]  # x, y, w, h inside the frame
    age: float
    female: bool
    present: bool  # most of the inner face in view: a face that should be found and scored


@dataclasses.dataclass(frozen=True)
class FrameTruth:
    """Who is in one frame: every actor with part of its inner face in view, and a label map at
    1/LABEL_STEP resolution (actor index + 1 per cell, 0 background, -1 occluder)."""

    actors: list
    labels: np.ndarray

    def __iter__(self):
        return iter(self.actors)

    def __len__(self) -> int:
        return sum(a.present for a in self.actors)


LABEL_STEP = 4


def linear(start: tuple[float, float], end: tuple[float, float], side: float, first: int, last: int,
           wobble: float = 0.0) -> Callable[[int], Position]:
    """From `start` (frame `first`) to `end` (frame `last`) in a straight line; absent outside."""
    def position(i: int) -> Position:
        if i < first or i > last:
            return None
        t = (i - first) / max(1, last - first)
        return (start[0] + t * (end[0] - start[0]),
                start[1] + t * (end[1] - start[1]) + wobble * math.sin(i / 4.0), side)
    return position


def legs(*pieces: Callable[[int], Position]) -> Callable[[int], Position]:
    """The first piece that places the actor in a frame (a path in several legs)."""
    def position(i: int) -> Position:
        for piece in pieces:
            p = piece(i)
            if p is not None:
                return p
        return None
    return position


@dataclasses.dataclass
class SyntheticVideo:
    name: str
    actors: list[Actor]
    frames: int
    size: tuple[int, int] = (640, 480)
    occluders: list = dataclasses.field(default_factory=list)  # (first, last, (x, y, w, h))
    noise: float = 2.0
    seed: int = 0

    def __post_init__(self):
        w, h = self.size
        rng = np.random.default_rng(self.seed)
        coarse = rng.integers(60, 200, (6, 8, 3)).astype(np.uint8)
        self._background = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        self._scaled: dict = {}

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[tuple[np.ndarray, FrameTruth]]:
        for i in range(self.frames):
            frame, labels = self.render(i)
            yield frame, FrameTruth(self.visible(i, labels), labels[::LABEL_STEP, ::LABEL_STEP].copy())

    def _crop(self, k: int, side: int) -> np.ndarray:
        key = (k, side)
        if key not in self._scaled:
            self._scaled[key] = cv2.resize(self.actors[k].face.crop, (side, side), interpolation=cv2.INTER_AREA)
        return self._scaled[key]

    def render(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame i (RGB uint8) and its label map (actor index + 1 per pixel, 0 background, -1 occluder)."""
        w, h = self.size
        frame = self._background.copy()
        labels = np.zeros((h, w), np.int16)
        for k, actor in enumerate(self.actors):
            p = actor.path(i)
            if p is None:
                continue
            cx, cy, side = p
            side = int(round(side))
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
            if fx1 <= fx0 or fy1 <= fy0:
                continue
            crop = self._crop(k, side)
            frame[fy0:fy1, fx0:fx1] = crop[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
            labels[fy0:fy1, fx0:fx1] = k + 1
        for first, last, (x, y, ow, oh) in self.occluders:
            if first <= i <= last:
                frame[y:y + oh, x:x + ow] = 90
                labels[y:y + oh, x:x + ow] = -1
        if self.noise > 0:
            rng = np.random.default_rng(self.seed * 100003 + i)
            noisy = frame.astype(np.int16) + rng.normal(0, self.noise, frame.shape).astype(np.int16)
            frame = np.clip(noisy, 0, 255).astype(np.uint8)
        return frame, labels

    def visible(self, i: int, labels: np.ndarray) -> list[VisibleActor]:
        """Actors with part of their inner face (the middle half of their square) in view in frame i;
        `present` when at least VISIBLE_FRACTION of it is."""
        out = []
        w, h = self.size
        for k, actor in enumerate(self.actors):
            p = actor.path(i)
            if p is None:
                continue
            cx, cy, side = p
            q = side / 4
            ix0, iy0, ix1, iy1 = int(cx - q), int(cy - q), int(cx + q), int(cy + q)
            inner_area = max(1, (ix1 - ix0) * (iy1 - iy0))
            seen = labels[max(0, iy0):max(0, iy1), max(0, ix0):max(0, ix1)] == k + 1
            fraction = seen.sum() / inner_area
            if fraction > 0:
                x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
                x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
                out.append(VisibleActor(k, (x0, y0, x1 - x0, y1 - y0), actor.face.age, actor.face.female,
                                        bool(fraction >= VISIBLE_FRACTION)))
        return out


def box_cover(box: Sequence[float], truth: FrameTruth) -> dict[int, float]:
    """For each actor, the fraction of the box covered by that actor's visible pixels."""
    x, y, w, h = (float(v) / LABEL_STEP for v in box)
    cells = truth.labels[max(0, int(y)):max(0, int(math.ceil(y + h))), max(0, int(x)):max(0, int(math.ceil(x + w)))]
    if cells.size == 0:
        return {}
    values, counts = np.unique(cells, return_counts=True)
    return {int(v) - 1: c / cells.size for v, c in zip(values, counts) if v > 0}


MIN_COVER = 0.25  # of a predicted box on an actor's visible pixels, to be that actor's face


def assign(boxes: Sequence[Sequence[float]], truth: FrameTruth) -> list:
    """One actor (a VisibleActor) or None per predicted box, one box per actor at most, greedily by
    how much of the box the actor covers; None for a box on no actor or on one already taken."""
    by_index = {a.actor: a for a in truth.actors}
    pairs = sorted(((cover, bi, actor) for bi, box in enumerate(boxes)
                    for actor, cover in box_cover(box, truth).items() if cover >= MIN_COVER and actor in by_index),
                   reverse=True)
    out: list = [None] * len(boxes)
    taken = set()
    for _, bi, actor in pairs:
        if out[bi] is None and actor not in taken:
            out[bi] = by_index[actor]
            taken.add(actor)
    return out


# --- the scenes -------------------------------------------------------------------------

def moving(faces: Sequence[ActorFace], count: int, frames: int = 150, size=(640, 480), seed: int = 0) -> SyntheticVideo:
    """`count` faces, each drifting slowly back and forth in its own lane."""
    w, h = size
    side = min(200, w // max(1, count) - 20, h - 40) if count <= 2 else min(150, h // 2 - 20)
    actors = []
    cols = count if count <= 2 else 2
    rows = 1 if count <= 2 else 2
    for k in range(count):
        col, row = k % cols, k // cols
        lane_cx = (col + 0.5) * w / cols
        lane_cy = (row + 0.5) * h / rows
        amplitude = (w / cols - side) / 2 - 8

        def path(i, lane_cx=lane_cx, lane_cy=lane_cy, amplitude=amplitude, phase=k):
            return (lane_cx + amplitude * math.sin(i / 20.0 + phase), lane_cy + 6 * math.sin(i / 9.0 + phase), side)
        actors.append(Actor(faces[k % len(faces)], path))
    return SyntheticVideo(f"moving-{count}", actors, frames, size, seed=seed)


def crossing(faces: Sequence[ActorFace], frames: int = 120, size=(640, 480), seed: int = 1,
             offset: float = 0.0) -> SyntheticVideo:
    """Two faces crossing paths at the same height; the second passes in front of the first."""
    w, h = size
    side = 170
    cy = h / 2
    a = Actor(faces[0], linear((side / 2 + 10, cy), (w - side / 2 - 10, cy + offset), side, 0, frames - 1, 3.0))
    b = Actor(faces[1], linear((w - side / 2 - 10, cy + offset), (side / 2 + 10, cy), side, 0, frames - 1, 3.0))
    return SyntheticVideo("crossing" if not offset else "crossing-offset", [a, b], frames, size, seed=seed)


def reentry(faces: Sequence[ActorFace], frames: int = 150, size=(640, 480), seed: int = 2) -> SyntheticVideo:
    """One face walks out of the frame on the right and comes back 40 frames later; a second stays."""
    w, h = size
    side = 160
    out_of_view = w + side
    leave = linear((w * 0.6, h / 2), (out_of_view, h / 2), side, 0, 40)
    back = linear((out_of_view, h / 2), (w * 0.6, h / 2), side, 80, 120)
    stay = linear((w * 0.6, h / 2), (w * 0.6, h / 2), side, 121, frames - 1)
    walker = Actor(faces[0], legs(leave, back, stay))
    stayer = Actor(faces[1], linear((side / 2 + 20, h / 2), (side / 2 + 60, h / 2), side, 0, frames - 1, 2.0))
    return SyntheticVideo("re-entry", [stayer, walker], frames, size, seed=seed)


def entering(faces: Sequence[ActorFace], frames: int = 90, size=(640, 480), seed: int = 3,
             appears_at: int = 30) -> SyntheticVideo:
    """One face from the start; a second appears (steps into view) at frame `appears_at`."""
    w, h = size
    side = 160
    first = Actor(faces[0], linear((w * 0.25, h / 2), (w * 0.3, h / 2), side, 0, frames - 1, 2.0))
    second = Actor(faces[1], linear((w * 0.72, h / 2), (w * 0.68, h / 2), side, appears_at, frames - 1, 2.0))
    return SyntheticVideo("entering", [first, second], frames, size, seed=seed)


def occlusion(faces: Sequence[ActorFace], frames: int = 90, size=(640, 480), seed: int = 4) -> SyntheticVideo:
    """Two faces; something passes in front of the first for 10 frames."""
    w, h = size
    side = 160
    a = Actor(faces[0], linear((w * 0.28, h / 2), (w * 0.32, h / 2), side, 0, frames - 1, 2.0))
    b = Actor(faces[1], linear((w * 0.72, h / 2), (w * 0.68, h / 2), side, 0, frames - 1, 2.0))
    x, y = int(w * 0.3 - side / 2 - 10), int(h / 2 - side / 2 - 10)
    return SyntheticVideo("occlusion", [a, b], frames, size, occluders=[(30, 39, (x, y, side + 20, side + 20))],
                          seed=seed)


def tracking_trials(faces: Sequence[ActorFace]) -> list[SyntheticVideo]:
    """Two crossings (at the same height, and 40 px apart), a re-entry, a face stepping in, an
    occlusion: faces[0:2], [2:4], [4:6], [6:8], [8:10] (taken round when there are fewer)."""
    pick = lambda k: [faces[k % len(faces)], faces[(k + 1) % len(faces)]]
    return [crossing(pick(0)), crossing(pick(2), offset=40.0), reentry(pick(4)), entering(pick(6)),
            occlusion(pick(8))]


def standard_scenes(faces: Sequence[ActorFace], frames: int = 150) -> list[SyntheticVideo]:
    """1, 2 and 4 moving faces, then the tracking trials."""
    return [moving(faces, 1, frames), moving(faces[1:] + faces[:1], 2, frames),
            moving(faces[3:] + faces[:3], 4, frames)] + tracking_trials(faces)


# --- scoring --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PredictedFace:
    box: tuple
    age: Optional[float]
    female: Optional[bool]
    id: Optional[int] = None


def score_video(predictions: Sequence[Sequence[PredictedFace]], truths: Sequence[FrameTruth]) -> dict:
    """Frame-level scores of one pipeline on one video.

    Each predicted face is given the actor whose visible pixels cover most of its box
    (`assign`). faces_found: present actors (most of the face in view) with a prediction /
    present actors; false_faces: predictions on no actor, or on one already taken;
    predictions on a half-hidden actor are neither (not scored, but their ids count).
    Age MAE and gender accuracy over the found faces of every frame; id_switches: times
    an actor's id differs from the id it had when last found (a re-entry under a new id
    counts); first_estimate_delay: per actor, frames from its first present frame to its
    first prediction with an age."""
    expected = found = false_faces = switches = 0
    errors, gender_ok = [], []
    last_id: dict[int, int] = {}
    first_seen: dict[int, int] = {}
    first_answer: dict[int, int] = {}
    for i, (faces, truth) in enumerate(zip(predictions, truths)):
        expected += len(truth)
        for t in truth:
            if t.present:
                first_seen.setdefault(t.actor, i)
        for face, t in zip(faces, assign([f.box for f in faces], truth)):
            if t is None:
                false_faces += 1
                continue
            if face.id is not None:
                if t.actor in last_id and last_id[t.actor] != face.id:
                    switches += 1
                last_id[t.actor] = face.id
            if not t.present:
                continue
            found += 1
            if face.age is not None:
                errors.append(abs(face.age - t.age))
                first_answer.setdefault(t.actor, i)
            if face.female is not None:
                gender_ok.append(face.female == t.female)
    delays = {a: first_answer[a] - first_seen[a] if a in first_answer else None for a in first_seen}
    return {"frames": len(predictions), "faces_expected": expected, "faces_found": found,
            "found_fraction": found / expected if expected else float("nan"), "false_faces": false_faces,
            "age_mae": float(np.mean(errors)) if errors else float("nan"),
            "gender_accuracy": float(np.mean(gender_ok)) if gender_ok else float("nan"),
            "id_switches": switches if last_id else None,
            "first_estimate_delay": {str(k): v for k, v in delays.items()}}
