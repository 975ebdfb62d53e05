"""How usable a face is for age/gender, from its 5 landmarks alone: pose and size.

Faces turned away from the camera are where the model goes wrong most (children read
years too old, adult gender right far less often), and tiny faces carry little detail.
The 5 YuNet landmarks (right eye, left eye, nose tip, mouth corners) tell both without
another model:

* ``yaw``: how far the nose tip sits from the eyes' midpoint, along the eye line, in
  eye distances (signed; 0 frontal, about 0.2 slightly turned, above 0.35 a profile-like
  view where one eye is nearly hidden);
* ``roll``: the eye line's angle in degrees (alignment removes it, but large roll often
  goes with a tilted, poorly seen face);
* ``size``: the eye distance in pixels of the frame.

``score`` in [0, 1] combines them; faces under ``LOW_QUALITY`` are flagged, get a wider
``age_std``, and move a video track's estimate less. Pure numpy.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

# pose buckets by |yaw|, as used in the reports: (upper bound, name)
POSE_BUCKETS = ((0.2, "frontal"), (0.35, "turned"), (math.inf, "profile"))
LOW_QUALITY = 0.5
FULL_SIZE_EYE_DISTANCE = 24.0  # px; smaller faces lose detail (the model input is 128 px)


@dataclasses.dataclass(frozen=True)
class FaceQuality:
    yaw: float
    roll: float
    size: float
    score: float

    @property
    def pose(self) -> str:
        return pose_bucket(self.yaw)

    @property
    def low(self) -> bool:
        return self.score < LOW_QUALITY

    def to_dict(self) -> dict:
        return {"score": round(self.score, 3), "yaw": round(self.yaw, 3), "roll": round(self.roll, 1),
                "eye_distance": round(self.size, 1), "pose": self.pose, "low": self.low}


def pose_bucket(yaw: float) -> str:
    for bound, name in POSE_BUCKETS:
        if abs(yaw) < bound:
            return name
    return POSE_BUCKETS[-1][1]


def face_quality(landmarks) -> FaceQuality:
    """Pose and size of a face from its 5 landmarks (YuNet's order), and a quality score."""
    p = np.asarray(landmarks, float).reshape(5, 2)
    eye_mid = (p[0] + p[1]) / 2
    eye_vec = p[1] - p[0]
    eye_dist = float(np.hypot(*eye_vec))
    if not np.isfinite(eye_dist) or eye_dist < 1e-6:
        return FaceQuality(yaw=0.0, roll=0.0, size=0.0, score=0.0)
    axis = eye_vec / eye_dist
    yaw = float(np.dot(p[2] - eye_mid, axis) / eye_dist)
    roll = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
    pose_factor = float(np.clip(1.0 - (abs(yaw) - 0.12) / 0.23, 0.0, 1.0))  # 1 frontal ... 0 from profile on
    roll_factor = float(np.clip(1.0 - (abs(roll) - 20.0) / 40.0, 0.0, 1.0))
    size_factor = float(np.clip(eye_dist / FULL_SIZE_EYE_DISTANCE, 0.25, 1.0))
    return FaceQuality(yaw=yaw, roll=roll, size=eye_dist, score=pose_factor * roll_factor * size_factor)
