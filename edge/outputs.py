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
    """A copy of the picture with a box and '34 ± 5 · F 0.93' over each face.

    Labels stay inside the picture (below the box when there is no room above it, pulled
    left at the right edge) and never cover one another: a label that would overlap one
    already drawn moves down until it is free."""
    out = image_rgb.copy()
    height, width = out.shape[:2]
    thickness = max(1, round(max(out.shape[:2]) / 500))
    scale = max(0.4, max(out.shape[:2]) / 1400)
    placed: list[tuple[int, int, int, int]] = []
    for face in faces:
        x, y, w, h = (int(v) for v in face.box)
        colour = COLOURS.get(face.gender, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        text = ((f"#{face.id} " if face.id is not None else "") + face.label()).replace("±", "+-").replace("·", "|")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        rect = label_rect(x, y, w, h, tw + 4, th + base + 2, width, height, placed)
        placed.append(rect)
        lx, ly, lw, lh = rect
        cv2.rectangle(out, (lx, ly), (lx + lw, ly + lh), colour, -1)
        cv2.putText(out, text, (lx + 2, ly + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    if fps is not None:
        cv2.putText(out, f"{fps:.1f} FPS", (8, int(24 * scale * 2)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 0), 1, cv2.LINE_AA)
    return out


def label_rect(x: int, y: int, w: int, h: int, lw: int, lh: int, width: int, height: int,
               placed: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a face's label: above its box, else below it, inside the picture, clear of
    the labels already placed."""
    lx = max(0, min(x, width - lw))
    ly = y - lh - 1 if y - lh - 1 >= 0 else min(y + h + 1, max(0, height - lh))
    for _ in range(len(placed) + 1):
        clash = [p for p in placed if lx < p[0] + p[2] and p[0] < lx + lw and ly < p[1] + p[3] and p[1] < ly + lh]
        if not clash:
            break
        ly = max(p[1] + p[3] for p in clash) + 1
        if ly + lh > height:  # no room below: the highest free place above instead
            ly = max(0, min(p[1] for p in clash) - lh - 1)
    return lx, ly, lw, lh


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The picture scaled to fit (width, height) without distortion, centred on black bars."""
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((h, w) + image.shape[2:], image.dtype)
    top, left = (h - nh) // 2, (w - nw) // 2
    out[top:top + nh, left:left + nw] = resized
    return out


def json_safe(value):
    """A record JSON can hold as it is: strings made valid UTF-8 (a file name that is not shows U+FFFD),
    non-finite numbers (NaN, infinity) as null; recursively."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def json_line(record: dict) -> bytes:
    """One JSON Lines line: valid UTF-8, never NaN or Infinity."""
    return (json.dumps(json_safe(record), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


class JsonLinesWriter:
    """One JSON object per line, UTF-8 whatever the locale, flushed after every line.

    A file is opened for appending (O_APPEND) and each line goes out in one write, so two runs
    logging to the same file interleave whole lines and lose none; a file that cannot be written
    (a folder, no permission, a full disk) is one clear error, never a silent loss."""

    def __init__(self, path: str):
        self.path = path
        self.file = None
        if path != "-":
            if os.path.isdir(path):
                raise AgeGenderError(f"--json {path}: is a folder; give a file name such as {path.rstrip('/')}/faces.jsonl")
            try:
                self.file = open(path, "ab", buffering=0)
            except OSError as exc:
                raise AgeGenderError(f"--json {path}: cannot write here ({exc.strerror or exc})") from None

    def write(self, record: dict) -> None:
        line = json_line(record)
        if self.file is None:
            import sys

            sys.stdout.flush()
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            return
        try:
            self.file.write(line)
        except OSError as exc:
            raise AgeGenderError(f"--json {self.path}: writing failed ({exc.strerror or exc})") from None

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


VIDEO_OUTPUTS = (".mp4", ".avi", ".mkv", ".mov")
PICTURE_OUTPUTS = (".jpg", ".jpeg", ".png", ".bmp")


def output_kind(path: str, pictures: Optional[int] = None) -> str:
    """"video", "picture" (one annotated picture) or "folder", decided by the name's extension;
    an AgeGenderError for an extension that is neither, or one picture name for several pictures."""
    ext = os.path.splitext(path.rstrip("/" + os.sep))[1].lower()
    if ext in VIDEO_OUTPUTS:
        return "video"
    if ext in PICTURE_OUTPUTS:
        if pictures is not None and pictures != 1:
            raise AgeGenderError(f"--output {path} names one picture, but there are "
                                 f"{pictures if pictures else 'many (a video or camera)'} frames: give a folder "
                                 f"(e.g. {os.path.splitext(path)[0]}/) or a video ({', '.join(VIDEO_OUTPUTS)})")
        return "picture"
    if ext and not os.path.isdir(path):
        raise AgeGenderError(f"--output {path}: unknown kind of output {ext!r}; use a video "
                             f"({', '.join(VIDEO_OUTPUTS)}), a picture ({', '.join(PICTURE_OUTPUTS)}) for a single "
                             "picture, or a folder name")
    return "folder"


def segment_path(path: str, index: int) -> str:
    """The video file of segment ``index``: ``out.mp4``, then ``out.001.mp4``, ``out.002.mp4`` ..."""
    if index == 0:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.{index:03d}{ext}"


class AnnotatedOutput:
    """Annotated frames to a video file (.mp4/.avi/...), one picture file, or a folder of pictures.

    Video is written in segments of ``segment_seconds`` of video (``out.mp4``, ``out.001.mp4``,
    ...): a video file is only playable once closed, so a run killed outright (SIGKILL, power loss)
    loses at most the segment it was writing, and a months-long camera run leaves files of a size
    one can open. A run shorter than one segment writes exactly the file it was asked for."""

    def __init__(self, path: str, fps: float = 30.0, pictures: Optional[int] = None,
                 segment_seconds: float = 60.0):
        self.path = path
        self.fps = fps
        self.segment_frames = max(1, int(round(segment_seconds * fps)))
        self.segments: list[str] = []
        self.video: Optional[cv2.VideoWriter] = None
        self.kind = output_kind(path, pictures)
        self.is_video = self.kind == "video"
        self._written: set = set()
        if self.kind == "folder":
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                raise AgeGenderError(f"--output {path}: cannot create this folder ({exc.strerror or exc})") from None
        log.info("annotated %s: %s", {"video": "video", "picture": "picture", "folder": "pictures in folder"}[self.kind],
                 path)
        self.frames = 0

    def write(self, image_rgb: np.ndarray, name: Optional[str] = None) -> None:
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        if self.is_video:
            if self.video is not None and self.frames % self.segment_frames == 0:
                self.video.release()  # this segment is complete and playable from now on
                self.video = None
            if self.video is None:
                target = segment_path(self.path, len(self.segments))
                fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.lower().endswith((".mp4", ".mov")) else "MJPG"))
                if not self.segments:
                    h, w = bgr.shape[:2]
                    self._size = (w, h)
                self.video = cv2.VideoWriter(target, fourcc, self.fps, self._size)
                if not self.video.isOpened() or not os.access(os.path.dirname(os.path.abspath(target)), os.W_OK):
                    raise AgeGenderError(f"{target}: cannot write video here")
                self.segments.append(target)
            if (bgr.shape[1], bgr.shape[0]) != self._size:  # pictures of other sizes: fitted, not squashed
                bgr = letterbox(bgr, self._size)
            self.video.write(bgr)
        elif self.kind == "picture":
            if not cv2.imwrite(self.path, bgr):
                raise AgeGenderError(f"{self.path}: cannot write the picture here")
        else:
            base = os.path.splitext(os.path.basename(name or f"frame_{self.frames:06d}"))[0]
            target = os.path.join(self.path, f"{base}.jpg")
            n = 1
            while target in self._written:  # two pictures of the same name from different folders
                n += 1
                target = os.path.join(self.path, f"{base}_{n}.jpg")
            if not cv2.imwrite(target, bgr):
                raise AgeGenderError(f"{target}: cannot write the annotated picture (read-only folder or full disk?)")
            self._written.add(target)
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
