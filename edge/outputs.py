"""Where results go: overlays drawn on frames, JSON Lines, annotated images or video, a window.

Every writer flushes as it goes and closes cleanly, so a run stopped by Ctrl-C or
SIGTERM leaves valid files behind (each JSON line is written whole, then flushed).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Optional, Sequence

import cv2
import numpy as np

from agegender.edge.errors import AgeGenderError

log = logging.getLogger(__name__)

COLOURS = {"female": (230, 80, 170), "male": (60, 140, 255)}  # RGB


def draw_faces(image_rgb: np.ndarray, faces: Sequence, fps: Optional[float] = None) -> np.ndarray:
    """A copy of the picture with a box and '34 ± 5 · F 0.93' over each face."""
    out = image_rgb.copy()
    thickness = max(1, round(max(out.shape[:2]) / 500))
    scale = max(0.4, max(out.shape[:2]) / 1400)
    for face in faces:
        x, y, w, h = (int(v) for v in face.box)
        colour = COLOURS.get(face.gender, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        text = (f"#{face.id} " if face.id is not None else "") + face.label()
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y - 4 if y - th - base - 4 > 0 else y + h + th + 4
        cv2.rectangle(out, (x, ty - th - base), (x + tw + 4, ty + base), colour, -1)
        cv2.putText(out, text.replace("±", "+-").replace("·", "|"), (x + 2, ty), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), 1, cv2.LINE_AA)
    if fps is not None:
        cv2.putText(out, f"{fps:.1f} FPS", (8, int(24 * scale * 2)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 0), 1, cv2.LINE_AA)
    return out


class JsonLinesWriter:
    """One JSON object per line, flushed after every line."""

    def __init__(self, path: str):
        self.path = path
        self.file = open(path, "w") if path != "-" else None

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        if self.file is None:
            import sys

            sys.stdout.write(line)
            sys.stdout.flush()
        else:
            self.file.write(line)
            self.file.flush()

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


class AnnotatedOutput:
    """Annotated frames to a video file (.mp4/.avi) or to a folder of images."""

    def __init__(self, path: str, fps: float = 30.0):
        self.path = path
        self.fps = fps
        self.video: Optional[cv2.VideoWriter] = None
        self.is_video = path.lower().endswith((".mp4", ".avi", ".mkv", ".mov"))
        if not self.is_video:
            os.makedirs(path, exist_ok=True)
        self.frames = 0

    def write(self, image_rgb: np.ndarray, name: Optional[str] = None) -> None:
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        if self.is_video:
            if self.video is None:
                fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.lower().endswith((".mp4", ".mov")) else "MJPG"))
                h, w = bgr.shape[:2]
                self.video = cv2.VideoWriter(self.path, fourcc, self.fps, (w, h))
                if not self.video.isOpened():
                    raise AgeGenderError(f"{self.path}: cannot write video here")
                self._size = (w, h)
            if (bgr.shape[1], bgr.shape[0]) != self._size:
                bgr = cv2.resize(bgr, self._size)
            self.video.write(bgr)
        else:
            base = os.path.splitext(os.path.basename(name or f"frame_{self.frames:06d}"))[0]
            cv2.imwrite(os.path.join(self.path, f"{base}.jpg"), bgr)
        self.frames += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
            self.video = None


class Window:
    """An OpenCV window (needs a GUI build of OpenCV; the headless wheel has none)."""

    def __init__(self, title: str = "agegender"):
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise AgeGenderError("--display needs OpenCV with GUI support: `pip uninstall opencv-python-headless "
                                 "&& pip install 'opencv-python<5'` (or write --output instead)") from None

    def show(self, image_rgb: np.ndarray) -> bool:
        """Show a frame; False when the user pressed q or Esc."""
        cv2.imshow(self.title, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
