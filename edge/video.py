"""Video mode: detect less, estimate each face until its answer settles, keep ids through crossings.

    from agegender.edge import Estimator, VideoEstimator
    video = VideoEstimator(Estimator())          # one per stream; Estimator.predict stays the still path
    for frame in frames:                         # RGB frames in order
        for face in video.process(frame):        # faces with ids and per-track answers
            print(face.id, face.age, face.gender)

In a camera stream the same faces are seen 30 times a second and their age and gender do
not change, so most of the still path's work is repeated. Per frame, video mode does:

1. **Find the faces.** The full-frame detector runs only every ``detect_every`` frames,
   when something moved outside the tracked faces (a new face entering: an 80x60 grey
   thumbnail differs from the previous frame's by more than ``motion_threshold``), when a
   tracked face was not found, or when a face is due for an estimate. In between, the
   detector runs on a small region around each track (``roi_scale`` face boxes, the face
   seen at ``track_face_px``), which keeps boxes current for a fraction of the cost.
2. **Keep ids.** Detections are matched to tracks by overlap with the track's predicted
   box (constant velocity) plus the similarity of their look (``agegender.edge.appearance``),
   so two crossing faces keep their ids; a track that is not found is remembered for
   ``forget_after`` frames and a face that looks like it (``reid_similarity``) gets its id
   back, wherever it reappears. A face walking in through the frame's edge, while faces that
   left are remembered, has no id (null) until it is seen whole: only then is its look
   compared with theirs.
3. **Estimate only what may have changed.** A track is estimated on every frame until its
   last ``settle_estimates`` ages agree within ``settle_age_std`` years and their gender
   calls agree, then every ``reestimate_every`` frames, or soon after its size changes by
   ``reestimate_size_change`` or its yaw by ``reestimate_yaw_change``. Estimates are made
   from the full detector's landmarks only, so each is the still path's answer for that
   frame. The answer is the mean of the track's estimates, each weighted by the face's
   quality (so a profile frame barely moves it), older ones fading over ``memory``
   estimates. Mirror-image averaging (``flip``) follows the Estimator unless set, and so do
   its alignment views: `run` leaves both off, as on the synthetic videos neither made video
   mode's ages better (benchmarks/README.md).
   A face that another face overlaps may be partly hidden: it is not estimated then
   (unless it has no answer yet), nor is its look learnt.

The defaults come from the sweep in ``benchmarks/README.md`` (``benchmarks/video_sweep.py``:
accuracy and ms per frame on synthetic videos with known truth). Not thread-safe: one
VideoEstimator per stream (the Estimator it wraps may be shared).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Optional, Sequence

import cv2
import numpy as np

from agegender.edge.appearance import REID_SIMILARITY, face_descriptor, similarity
from agegender.edge.contract import as_rgb_picture
from agegender.edge.detectors import Detection, TwoScaleDetector, YuNetDetector, detector_like
from agegender.edge.estimator import Estimator, Face, clip_box
from agegender.edge.quality import LOW_QUALITY, FaceQuality, face_quality
from agegender.edge.tracker import MIN_QUALITY_WEIGHT, blend, iou

log = logging.getLogger(__name__)

MOTION_THUMBNAIL = (80, 60)  # the grey thumbnail compared frame to frame
MOTION_MIN_CELLS = 2  # changed thumbnail cells outside the tracks that call the full detector
REGION_STEP = 32  # px: region sides are rounded up to a multiple of this
# YuNet's confidence where a tracked face is known to be: a face seen small in its region scores
# lower (0.75-0.85 for faces the full detector scores 0.9), so regions accept what the full-frame
# search would not (as trackers such as ByteTrack keep low-score boxes that continue a track)
REGION_SCORE_THRESHOLD = 0.5
POSITION_GATE_FRAMES = 30  # beyond this many frames unseen, a track is matched by its look alone
MIN_OVERLAP = 0.1  # predicted box vs detection, for a match by position
LOST_LOOK = 0.5  # a track unseen for a few frames is matched near where it should be only if this alike
VELOCITY_FRAMES = 10  # the motion of a track is measured over its last clear frames, at most this many
CONFIRM_FRAMES = 15  # a face walking in gets its id when seen whole, or after this many frames
CROWDED = 0.1  # a face whose box another face's box covers this much may be partly hidden: not estimated
CROWDED_WEIGHT = 0.05  # the weight of an estimate made while crowded (a new face's first), beside clear ones


@dataclasses.dataclass
class RegionDetection(Detection):
    """A face found in a track's region, seen small (at `track_face_px`): good enough to follow the face,
    not to estimate from. Estimates are made from the full detector's landmarks only, so they are the
    still path's for the same frame."""


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """How much work video mode skips. `agegender run` has a flag for each option its defaults sweep
    measured (detect_every, roi_scale, track_face_px, motion_threshold, settle_age_std,
    reestimate_every, forget_after); the others are set here."""

    detect_every: int = 15
    roi_scale: float = 2.0
    track_face_px: float = 48.0
    motion_threshold: float = 12.0  # grey levels; 0 turns the motion trigger off
    settle_estimates: int = 3
    settle_age_std: float = 1.5
    reestimate_every: int = 30
    reestimate_size_change: float = 0.25
    reestimate_yaw_change: float = 0.15
    forget_after: int = 150
    reid_similarity: float = REID_SIMILARITY
    memory: int = 20
    flip: Optional[bool] = None  # average each estimate with the mirror image's; None: as the Estimator does

    def __post_init__(self):
        if self.detect_every < 1 or self.settle_estimates < 1 or self.reestimate_every < 1:
            raise ValueError("detect_every, settle_estimates and reestimate_every must be at least 1")
        if self.track_face_px < 16:
            raise ValueError("track_face_px must be at least 16 px")
        if self.roi_scale < 1.2:
            raise ValueError("roi_scale must be at least 1.2 face boxes")
        if self.memory < 1:
            raise ValueError("memory must be at least 1 estimate")


@dataclasses.dataclass
class VideoTrack:
    """One face followed through the stream, with its running answer."""

    id: int
    detection: Detection
    descriptor: np.ndarray
    last_seen: int
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))
    age: Optional[float] = None
    age_std: Optional[float] = None
    female_prob: Optional[float] = None
    age_group: Optional[str] = None
    recent_ages: list = dataclasses.field(default_factory=list)
    recent_female: list = dataclasses.field(default_factory=list)
    estimates: int = 0
    last_estimate_frame: int = -(10 ** 9)
    last_estimate_side: float = 0.0
    last_estimate_yaw: float = 0.0
    quality: Optional[FaceQuality] = None
    crowded: bool = False  # another face overlaps it in the current frame
    path: list = dataclasses.field(default_factory=list)  # (frame, centre) of its last clear frames
    provisional: bool = False  # its answer so far comes from partly hidden views only
    weight_sum: float = 0.0  # of its estimates' weights, fading with `memory`
    first_seen: int = 0
    confirmed: bool = True  # has an id to show (a face walking in gets one once seen whole)
    clear_look: bool = True  # its descriptor comes from a whole, unhidden view
    wants_estimate: bool = False  # its size or pose changed: estimate at the next full detection

    @property
    def side(self) -> float:
        return float(max(self.detection.box[2], self.detection.box[3]))

    def predicted_box(self, frame_index: int) -> tuple:
        x, y, w, h = self.detection.box
        dx, dy = self.velocity * min(frame_index - self.last_seen, POSITION_GATE_FRAMES)
        return (x + dx, y + dy, w, h)

    def settled(self, options: VideoOptions) -> bool:
        n = options.settle_estimates
        if self.estimates < n:
            return False
        ages = [a for a in self.recent_ages[-n:] if a is not None]
        if ages and float(np.std(ages)) > options.settle_age_std:
            return False
        calls = {p >= 0.5 for p in self.recent_female[-n:] if p is not None}
        return len(calls) <= 1


def centre(box) -> np.ndarray:
    x, y, w, h = box
    return np.array([x + w / 2, y + h / 2], float)


def region_detector(detector, score_threshold: float):
    """A YuNet like the given one with a lower confidence threshold, for regions; any other detector as it is.
    Of a two-size detector, only the first pass: a region is a small crop around one face."""
    if isinstance(detector, TwoScaleDetector):
        detector = detector.first
    if isinstance(detector, YuNetDetector):
        return detector_like(detector, score_threshold=min(score_threshold, detector.score_threshold))
    return detector


def path_velocity(path: Sequence) -> np.ndarray:
    """Pixels per frame from the first to the last (frame, centre) of a path; 0 for a short one."""
    if len(path) < 3 or path[-1][0] - path[0][0] < 2:
        return np.zeros(2)
    return (path[-1][1] - path[0][1]) / (path[-1][0] - path[0][0])


def motion_thumbnail(image_rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, MOTION_THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.int16)


def moved_outside(previous: np.ndarray, current: np.ndarray, boxes: Sequence, frame_shape, threshold: float,
                  margin: float) -> bool:
    """True when the thumbnail changed by more than `threshold` grey levels in at least
    MOTION_MIN_CELLS cells outside the given boxes (each widened to `margin` box sides)."""
    changed = np.abs(current - previous) > threshold
    height, width = frame_shape[:2]
    sx, sy = MOTION_THUMBNAIL[0] / width, MOTION_THUMBNAIL[1] / height
    for box in boxes:
        c = centre(box)
        half = margin * max(box[2], box[3]) / 2
        x0, x1 = int(max(0, (c[0] - half) * sx)), int(math.ceil((c[0] + half) * sx))
        y0, y1 = int(max(0, (c[1] - half) * sy)), int(math.ceil((c[1] + half) * sy))
        changed[y0:y1, x0:x1] = False
    return int(changed.sum()) >= MOTION_MIN_CELLS


def match_tracks(tracks: Sequence[VideoTrack], detections: Sequence[Detection], descriptors: Sequence[np.ndarray],
                 frame_index: int, reid_similarity: float) -> tuple[dict, list]:
    """Greedy matching: {detection index: track} and the unmatched detection indices.

    A pair counts by position plus look: a track seen in the previous frame by the overlap
    of its predicted box with the detection; a track unseen for a few frames (hidden, or
    missed) by the detection's distance from its predicted centre, within a radius that
    grows with the gap, and only if it looks somewhat like it (LOST_LOOK); any remembered
    track by look alone when the similarity reaches `reid_similarity` and the sizes are
    within 2x. The best-scoring pairs go first; one detection per track."""
    pairs = []
    for ti, track in enumerate(tracks):
        gap = frame_index - track.last_seen
        predicted = track.predicted_box(frame_index)
        for di, detection in enumerate(detections):
            look = similarity(track.descriptor, descriptors[di])
            ratio = max(detection.box[2], detection.box[3]) / max(track.side, 1e-6)
            position = 0.0
            if gap == 1:
                position = iou(predicted, detection.box)
                position = position if position >= MIN_OVERLAP else 0.0
            elif gap <= POSITION_GATE_FRAMES and look >= LOST_LOOK and 0.5 <= ratio <= 2.0:
                radius = track.side * min(1.5, 0.5 + 0.05 * gap)
                position = max(0.0, 1.0 - float(np.linalg.norm(centre(detection.box) - centre(predicted))) / radius)
            if position > 0:
                pairs.append((position + look, ti, di))
            elif look >= reid_similarity and 0.5 <= ratio <= 2.0:
                pairs.append((look, ti, di))
    matched: dict[int, VideoTrack] = {}
    used = set()
    for _, ti, di in sorted(pairs, key=lambda p: p[0], reverse=True):
        if ti in used or di in matched:
            continue
        used.add(ti)
        matched[di] = tracks[ti]
    return matched, [di for di in range(len(detections)) if di not in matched]


def dedupe(detections: Sequence[Detection], overlap: float = 0.3) -> list[Detection]:
    """One detection per face when searched regions overlap (a face seen whole in its own region
    and cut at the edge of a neighbour's): the higher score wins."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: d.score, reverse=True):
        c = centre(d.box)
        if all(iou(d.box, k.box) < overlap and not inside(c, k.box) for k in kept):
            kept.append(d)
    return kept


def inside(point, box) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def inside_frame(box, frame_shape, margin: float = 0.15) -> bool:
    """True when the box keeps `margin` face sides from every edge of the frame. The detector's box of
    a face cut by the edge covers only what is visible, so it ends at the edge: a face that close to it
    may not be whole."""
    x, y, w, h = box
    height, width = frame_shape[:2]
    gap = max(2.0, margin * max(w, h))
    return x >= gap and y >= gap and x + w <= width - gap and y + h <= height - gap


def covered_fraction(box, others: Sequence) -> float:
    """How much of a box other boxes cover (the largest single overlap, over the box's area)."""
    x, y, w, h = box
    best = 0.0
    for ox, oy, ow, oh in others:
        ix = max(0.0, min(x + w, ox + ow) - max(x, ox))
        iy = max(0.0, min(y + h, oy + oh) - max(y, oy))
        best = max(best, ix * iy / max(w * h, 1e-6))
    return best


class VideoEstimator:
    """Faces with ids and steady answers from the frames of one stream, in order."""

    def __init__(self, estimator: Estimator, options: Optional[VideoOptions] = None):
        self.estimator = estimator
        self.options = options or VideoOptions()
        self.tracks: list[VideoTrack] = []
        self.frame_index = 0
        self._next_id = 1
        self._previous_thumbnail: Optional[np.ndarray] = None
        self._last_full = -(10 ** 9)
        self.timings: dict[str, float] = {}
        # the Haar fallback finds no face much under 50 px: it searches regions as the full detector sees them
        self._coarse_search = getattr(estimator.detector, "name", "") != "haar"
        self._region_detector = region_detector(estimator.detector, REGION_SCORE_THRESHOLD)
        self.counts = {"frames": 0, "full_detections": 0, "region_searches": 0, "estimates": 0}

    def reset(self) -> None:
        """Forget every track (a new scene or stream)."""
        self.tracks, self.frame_index, self._previous_thumbnail, self._last_full = [], 0, None, -(10 ** 9)

    # --- the one obvious method -------------------------------------------------
    def process(self, frame, colour: str = "RGB") -> list[Face]:
        """The visible faces of the next frame of the stream, with track ids."""
        image = as_rgb_picture(frame, colour)
        i = self.frame_index
        self.frame_index += 1
        self.counts["frames"] += 1
        t0 = time.perf_counter()
        visible = [t for t in self.tracks if t.last_seen == i - 1]
        thumbnail = motion_thumbnail(image)
        full = (i - self._last_full >= self.options.detect_every or self._previous_thumbnail is None
                or any(self._estimate_due(t, i) for t in visible)
                or (self.options.motion_threshold > 0 and moved_outside(
                    self._previous_thumbnail, thumbnail, [t.predicted_box(i) for t in visible] +
                    [t.detection.box for t in visible], image.shape, self.options.motion_threshold,
                    self.options.roi_scale)))
        self._previous_thumbnail = thumbnail
        detections = [] if full else self._search_regions(image, visible, i)
        t1 = time.perf_counter()
        descriptors = [self._describe(image, d) for d in detections]
        matched, _ = match_tracks(self.tracks, detections, descriptors, i, self.options.reid_similarity)
        found = sum(1 for t in matched.values() if t.last_seen == i - 1)
        if not full and (found < len(visible) or len(matched) < len(detections)):
            full = True  # a tracked face not found near where it was, or another face beside it
        detect_s, track_s = t1 - t0, time.perf_counter() - t1
        if full:
            t1 = time.perf_counter()
            detections = self.estimator.detect(image)
            self._last_full = i
            self.counts["full_detections"] += 1
            t2 = time.perf_counter()
            descriptors = [self._describe(image, d) for d in detections]
            matched, _ = match_tracks(self.tracks, detections, descriptors, i, self.options.reid_similarity)
            detect_s, track_s = detect_s + t2 - t1, track_s + time.perf_counter() - t2
        t2 = time.perf_counter()
        shown = self._update_tracks(detections, descriptors, matched, i, image.shape)
        track_s += time.perf_counter() - t2
        align_s, infer_s = self._estimate(image, [t for t in shown if self._needs_estimate(t, i)], i)
        self.tracks = [t for t in self.tracks if i - t.last_seen <= self.options.forget_after]
        self.timings = {"detect": detect_s, "track": track_s, "align": align_s, "infer": infer_s}
        height, width = image.shape[:2]
        return [self._face(t, width, height) for t in shown]

    # --- the steps ------------------------------------------------------------------
    def _search_regions(self, image: np.ndarray, tracks: Sequence[VideoTrack], frame_index: int) -> list[Detection]:
        """The detector on a small square region around each track's predicted box, the face seen at
        `track_face_px` (the Haar fallback: as the full detector sees it). Region sides are rounded up
        to REGION_STEP px, so the detector's input size (which it re-plans when it changes) rarely does."""
        height, width = image.shape[:2]
        detect_scale = min(1.0, self.estimator.detector_max_side / max(height, width))
        found = []
        for track in tracks:
            box = track.predicted_box(frame_index)
            c, side = centre(box), self.options.roi_scale * max(box[2], box[3])
            scale = min(1.0, self.options.track_face_px / max(track.side, 1.0)) if self._coarse_search else detect_scale
            target = int(math.ceil(side * scale / REGION_STEP) * REGION_STEP)
            x0, y0 = c[0] * scale - target / 2, c[1] * scale - target / 2  # region corner, scaled
            to_region = np.array([[scale, 0, -x0], [0, scale, -y0]], np.float32)
            region = cv2.warpAffine(image, to_region, (target, target), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
            with self.estimator.lock:
                raw = self._region_detector.detect(region)
            self.counts["region_searches"] += 1
            offset = np.array([x0, y0], np.float32)
            for d in raw:
                bx, by, bw, bh = d.box
                landmarks = None if d.landmarks is None else (d.landmarks + offset) / scale
                found.append(RegionDetection(((bx + x0) / scale, (by + y0) / scale, bw / scale, bh / scale),
                                             d.score, landmarks))
        return self.estimator.select(dedupe(found))

    def _describe(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        return face_descriptor(image, self.estimator.contract, landmarks=detection.landmarks, box=detection.box)

    def _update_tracks(self, detections, descriptors, matched: dict, i: int, frame_shape) -> list[VideoTrack]:
        shown = []
        boxes = [d.box for d in detections]
        for di, detection in enumerate(detections):
            crowded = covered_fraction(detection.box, boxes[:di] + boxes[di + 1:]) > CROWDED
            whole = inside_frame(detection.box, frame_shape)
            quality = face_quality(detection.landmarks) if detection.landmarks is not None else None
            track = matched.get(di)
            if track is None:
                track = VideoTrack(self._next_id, detection, descriptors[di], last_seen=i,
                                   path=[] if crowded else [(i, centre(detection.box))],
                                   first_seen=i, confirmed=whole, clear_look=whole and not crowded)
                self._next_id += 1
                self.tracks.append(track)
            else:
                gap = i - track.last_seen
                if gap > POSITION_GATE_FRAMES:  # came back: its old motion says nothing
                    track.path = []
                if not crowded:  # a partly hidden face's box does not show its motion
                    track.path = (track.path + [(i, centre(detection.box))])[-VELOCITY_FRAMES:]
                track.velocity = path_velocity(track.path)
                if gap > 1:  # reappeared: look again
                    track.last_estimate_frame = -(10 ** 9)
                track.detection, track.last_seen = detection, i
                good = quality is None or quality.score >= LOW_QUALITY
                if good and whole and not crowded:  # the look is learnt from clear, whole, unhidden views only
                    mixed = 0.8 * track.descriptor + 0.2 * descriptors[di] if track.clear_look else descriptors[di]
                    track.descriptor = mixed / (np.linalg.norm(mixed) + 1e-6)
                    track.clear_look = True
            track.quality = quality
            track.crowded = crowded
            shown.append(track)
        return [self._confirm(t, i) for t in shown]

    def _confirm(self, track: VideoTrack, i: int) -> VideoTrack:
        """A face first seen cut by the frame's edge (walking in) while faces that left are remembered has
        no id until it is seen whole (or for CONFIRM_FRAMES frames): then, if it looks like one of them,
        it is that face again and takes its id and answer; else it gets its own id."""
        if track.confirmed:
            return track
        gone = [t for t in self.tracks if t.confirmed and t.last_seen < track.first_seen]
        if gone and not (track.clear_look or i - track.first_seen >= CONFIRM_FRAMES):
            return track  # it may be one of them: wait for a whole view
        track.confirmed = True
        best = max(gone, key=lambda t: similarity(t.descriptor, track.descriptor), default=None)
        if best is None or not track.clear_look or similarity(best.descriptor, track.descriptor) < self.options.reid_similarity:
            return track
        for key in ("detection", "last_seen", "path", "velocity", "quality", "crowded"):
            setattr(best, key, getattr(track, key))
        for key in ("age", "age_std", "female_prob", "age_group"):  # the old answer, unless it had none
            if getattr(best, key) is None:
                setattr(best, key, getattr(track, key))
        best.last_estimate_frame = -(10 ** 9)  # look again
        self.tracks.remove(track)
        return best

    def _estimate_due(self, track: VideoTrack, i: int) -> bool:
        """Due: not settled yet, `reestimate_every` frames since the last estimate, or asked for by a
        change of size or pose seen in a region search. A due estimate calls the full detector."""
        return (track.wants_estimate or not track.settled(self.options)
                or i - track.last_estimate_frame >= self.options.reestimate_every)

    def _needs_estimate(self, track: VideoTrack, i: int) -> bool:
        """Estimate now? Only from the full detector's landmarks (so an estimate is the still path's for
        that frame), and never while another face overlaps it (it may be partly hidden) unless it has no
        answer yet. Since the full detector runs anyway, a face due within the next third of
        `reestimate_every` frames is estimated with the others."""
        o = self.options
        if track.crowded and track.estimates > 0:
            return False
        changed = abs(track.side / max(track.last_estimate_side, 1e-6) - 1.0) > o.reestimate_size_change
        yaw = track.quality.yaw if track.quality is not None else 0.0
        changed = changed or abs(yaw - track.last_estimate_yaw) > o.reestimate_yaw_change
        if isinstance(track.detection, RegionDetection):
            track.wants_estimate = track.wants_estimate or changed
            return False
        soon = i - track.last_estimate_frame >= o.reestimate_every * 2 / 3
        return changed or soon or self._estimate_due(track, i)

    def _estimate(self, image: np.ndarray, tracks: Sequence[VideoTrack], i: int) -> tuple[float, float]:
        if not tracks:
            return 0.0, 0.0
        t0 = time.perf_counter()
        detections = self.estimator.refine(image, [t.detection for t in tracks])
        inputs = self.estimator.align(image, detections)
        t1 = time.perf_counter()
        faces = self.estimator.faces_from(image, detections, self.estimator.infer(inputs, flip=self.options.flip))
        self.counts["estimates"] += len(tracks)
        for track, face in zip(tracks, faces):
            weight = 1.0 if face.quality is None else max(MIN_QUALITY_WEIGHT, face.quality.score)
            if track.crowded:  # partly hidden, perhaps: counts for little beside clear views
                weight *= CROWDED_WEIGHT
            if track.provisional and not track.crowded:  # the first clear view replaces the hidden ones
                track.weight_sum, track.provisional = 0.0, False
            elif track.estimates == 0:
                track.provisional = track.crowded
            track.weight_sum = track.weight_sum * (1.0 - 1.0 / self.options.memory) + weight
            share = weight / track.weight_sum
            track.age = blend(track.age, face.age, share)
            track.age_std = blend(track.age_std, face.age_std, share)
            track.female_prob = blend(track.female_prob, face.female_prob, share)
            track.age_group = face.age_group
            track.recent_ages = (track.recent_ages + [face.age])[-self.options.settle_estimates:]
            track.recent_female = (track.recent_female + [face.female_prob])[-self.options.settle_estimates:]
            track.estimates += 1
            track.wants_estimate = False
            track.last_estimate_frame = i
            track.last_estimate_side = track.side
            track.last_estimate_yaw = face.quality.yaw if face.quality is not None else 0.0
        return t1 - t0, time.perf_counter() - t1

    def _face(self, track: VideoTrack, width: int, height: int) -> Face:
        d = track.detection
        face = Face(clip_box(d.box, width, height), d.score, None, None, track.age_group, None, None, None,
                    quality=track.quality)
        return face.with_answer(track.id if track.confirmed else None, track.age, track.age_std, track.female_prob,
                                self.estimator.contract.age_groups)
