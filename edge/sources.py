"""Frame sources: a Pi camera, a camera index, a video file, an image, a folder or glob of images.

``open_source(spec)`` picks one from a string:

* ``picam``: picamera2 on a Raspberry Pi (imported only then; on Raspberry Pi OS it
  comes from apt ``python3-picamera2``: create the venv with --system-site-packages);
* ``0``, ``1`` ...: a camera through ``cv2.VideoCapture``;
* a video file; an image file; a folder of images; a glob such as ``shots/*.jpg``.

Every source yields ``Frame`` objects with RGB pixels. A picture that cannot be read
yields a Frame with ``error`` set instead of stopping the loop. Live sources that
stop delivering frames are reopened with backoff for ``reconnect_seconds`` before
the source gives up with a ``SourceError``.
"""
from __future__ import annotations

import dataclasses
import glob
import logging
import os
import time
from typing import Callable, Iterator, Optional

import cv2
import numpy as np

from agegender.edge.contract import to_rgb_uint8
from agegender.edge.errors import AgeGenderError
from agegender.edge.images import IMAGE_EXTENSIONS, ImageError, list_images, read_image_oriented

log = logging.getLogger(__name__)


class SourceError(AgeGenderError):
    pass


@dataclasses.dataclass
class Frame:
    image: Optional[np.ndarray]  # RGB uint8, None when this item could not be read
    index: int
    source: str  # file name, or the camera / video name
    error: Optional[str] = None
    time: float = dataclasses.field(default_factory=time.time)  # wall clock when it was captured (UNIX s)
    orientation: int = 1  # the EXIF orientation applied to a still picture (1: none)
    stream_time: Optional[float] = None  # seconds from the start of a video file


class ImageFiles:
    """Still pictures from a list of paths."""

    live = False
    sequential = False  # unrelated pictures: no tracking

    def __init__(self, paths: list[str], name: str):
        self.paths = paths
        self.name = name

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            try:
                image, orientation = read_image_oriented(path)
                yield Frame(image, i, path, orientation=orientation)
            except ImageError as exc:
                yield Frame(None, i, path, str(exc))

    def close(self) -> None:
        pass


class FrameArrays:
    """Frames already in memory (RGB arrays), as a sequential stream: for the API, tests and benchmarks."""

    live = False
    sequential = True

    def __init__(self, images, name: str = "frames", fps: float = 30.0):
        self.images = images
        self.name = name
        self.fps = fps

    def __iter__(self) -> Iterator[Frame]:
        for i, image in enumerate(self.images):
            yield Frame(image, i, self.name)

    def close(self) -> None:
        pass


class VideoCapture:
    """A camera index or a video file through cv2.VideoCapture, reopened when a camera drops out."""

    sequential = True  # frames of one scene: faces are tracked and smoothed

    def __init__(self, target, name: str, live: bool, reconnect_seconds: float = 10.0,
                 capture_factory: Callable = cv2.VideoCapture, sleep: Callable[[float], None] = time.sleep):
        self.target = target
        self.name = name
        self.live = live
        self.reconnect_seconds = reconnect_seconds
        self._factory = capture_factory
        self._sleep = sleep
        self.reconnects = 0
        self.cap = self._open()
        if self.cap is None:
            if isinstance(target, int):
                raise SourceError(f"cannot open camera {target}: no such camera, or it is busy "
                                  "(cameras are numbered from 0; on a Raspberry Pi camera module use --source picam)")
            raise SourceError(f"cannot open {'stream' if live else 'video'} {name}: not a video OpenCV can read")

    def _open(self):
        cap = self._factory(self.target)
        if cap is not None and cap.isOpened():
            return cap
        if cap is not None:
            cap.release()
        return None

    def _reconnect(self, since: float) -> bool:
        """Reopen a live source with exponential backoff; False once reconnect_seconds have
        passed since the last good frame (a camera that opens but delivers nothing counts too)."""
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        delay = 0.25
        while time.monotonic() - since < self.reconnect_seconds:
            log.warning("%s: no frames; reopening in %.1f s", self.name, delay)
            self._sleep(delay)
            self.cap = self._open()
            if self.cap is not None:
                self.reconnects += 1
                log.info("%s: reopened", self.name)
                return True
            delay = min(delay * 2, 5.0)
        return False

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        last_frame = time.monotonic()
        while True:
            ok, image = self.cap.read() if self.cap is not None else (False, None)
            if not ok or image is None:
                if not self.live:
                    return  # end of the video file
                if time.monotonic() - last_frame >= self.reconnect_seconds or not self._reconnect(last_frame):
                    raise SourceError(f"{self.name}: no frames for {self.reconnect_seconds:.0f} s; giving up")
                continue
            last_frame = time.monotonic()
            position = None if self.live else self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if position is not None and (position <= 0 and index > 0):  # some containers do not say
                position = index / self.fps
            yield Frame(to_rgb_uint8(image), index, self.name, stream_time=position)
            index += 1

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    @property
    def fps(self) -> float:
        value = self.cap.get(cv2.CAP_PROP_FPS) if self.cap is not None else 0
        return float(value) if value and value > 0 else 30.0


class PiCamera:
    """picamera2 on a Raspberry Pi (RGB888 frames), retried with backoff on errors."""

    live = True
    sequential = True

    def __init__(self, size=(640, 480), reconnect_seconds: float = 10.0):
        try:
            from picamera2 import Picamera2  # noqa: F401
        except ImportError:
            raise SourceError("picamera2 is not importable: on Raspberry Pi OS run `sudo apt install "
                              "python3-picamera2` and create the venv with `python3 -m venv "
                              "--system-site-packages`") from None
        self.size = size
        self.name = "picam"
        self.reconnect_seconds = reconnect_seconds
        self.camera = self._start()

    def _start(self):
        from picamera2 import Picamera2

        camera = Picamera2()
        # "RGB888" in libcamera terms is BGR byte order in memory, as OpenCV expects
        camera.configure(camera.create_video_configuration(main={"size": self.size, "format": "RGB888"}))
        camera.start()
        return camera

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        failed_since = None
        while True:
            try:
                image = self.camera.capture_array()
                failed_since = None
            except Exception as exc:  # picamera2 raises many kinds
                failed_since = failed_since or time.monotonic()
                if time.monotonic() - failed_since > self.reconnect_seconds:
                    raise SourceError(f"picam: capture failing for {self.reconnect_seconds:.0f} s ({exc})") from None
                log.warning("picam: capture failed (%s); restarting the camera", exc)
                time.sleep(0.5)
                self.close()
                try:
                    self.camera = self._start()
                except Exception as start_exc:  # noqa: BLE001
                    log.warning("picam: restart failed (%s)", start_exc)
                continue
            yield Frame(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), index, self.name)
            index += 1

    def close(self) -> None:
        try:
            self.camera.stop()
            self.camera.close()
        except Exception:  # noqa: BLE001  (closing a broken camera)
            pass

    fps = 30.0


VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def open_source(spec: str, reconnect_seconds: float = 10.0):
    """A frame source from a command-line string (see the module docstring)."""
    spec = str(spec)
    if spec == "picam":
        return PiCamera(reconnect_seconds=reconnect_seconds)
    if spec.isdigit():
        return VideoCapture(int(spec), f"camera {spec}", live=True, reconnect_seconds=reconnect_seconds)
    if os.path.isdir(spec):  # an existing path is always taken literally, even with glob characters in it
        try:
            paths = list_images(spec)
        except OSError as exc:
            raise SourceError(f"{spec}: cannot read this folder ({exc.strerror or exc})") from None
        if not paths:
            raise SourceError(f"{spec}: no pictures in this folder ({', '.join(IMAGE_EXTENSIONS)})")
        return ImageFiles(paths, spec)
    if os.path.isfile(spec):
        lower = spec.lower()
        if lower.endswith(IMAGE_EXTENSIONS):
            return ImageFiles([spec], spec)
        return VideoCapture(spec, spec, live=False)
    if any(ch in spec for ch in "*?["):
        paths = sorted(p for p in glob.glob(spec) if os.path.isfile(p))
        if not paths:
            raise SourceError(f"{spec}: the pattern matches no files")
        return ImageFiles(paths, spec)
    if spec.startswith(("rtsp://", "http://", "https://")):
        return VideoCapture(spec, spec, live=True, reconnect_seconds=reconnect_seconds)
    if os.path.splitext(spec)[1] or os.sep in spec:
        raise SourceError(f"{spec}: no such file or folder")
    raise SourceError(f"unknown source {spec!r}: expected picam, a camera index (0), a video file, "
                      "an image, a folder of images or a glob pattern")
