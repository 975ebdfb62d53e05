"""The camera loop: frames -> faces -> tracked, smoothed results -> outputs.

``run_loop`` drives any source through an Estimator: video and camera sources in video
mode (``agegender.edge.video.VideoEstimator``: detect less, estimate each face until it
settles, ids through crossings), or frame by frame with the IoU tracker smoothing the
still path's answers (``--mode frames``); pictures through the still path. It writes JSON Lines, annotated
frames or video and an optional window, and reports frames per second. It stops at
the end of a file, after ``max_frames``, on Ctrl-C, or when ``stop`` is set (the CLI
sets it on SIGTERM); outputs are always flushed and closed.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from typing import Callable, Optional

from agegender.edge.estimator import Estimator, Face
from agegender.edge.outputs import draw_faces
from agegender.edge.sources import SourceError
from agegender.edge.tracker import IoUTracker

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunStats:
    frames: int = 0
    faces: int = 0
    errors: int = 0
    seconds: float = 0.0
    stopped_by: str = "end of source"
    source_lost: bool = False  # the source failed for good (exit status 1)
    stage_seconds: dict = dataclasses.field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def smooth_faces(faces: list[Face], tracker: IoUTracker, estimator: Estimator) -> list[Face]:
    """Give faces track ids and replace their estimates by the tracks' moving averages."""
    tracks = tracker.update([f.box for f in faces], [f.age for f in faces], [f.age_std for f in faces],
                            [f.female_prob for f in faces],
                            [f.quality.score if f.quality is not None else 1.0 for f in faces])
    groups = estimator.contract.age_groups
    return [face.with_answer(track.id, track.age, track.age_std, track.female_prob, groups)
            for face, track in zip(faces, tracks)]


def frame_record(frame, faces: list[Face]) -> dict:
    """One JSON Lines object: the source, frame number, capture time (ISO 8601 UTC, ms), the time
    in the stream for video files, and the faces."""
    record = {"source": frame.source, "frame": frame.index, "time": iso_utc(frame.time)}
    if frame.stream_time is not None:
        record["stream_time"] = round(frame.stream_time, 3)
    if frame.orientation != 1:  # boxes are in the upright picture
        record["exif_orientation"] = frame.orientation
    record["faces"] = [f.to_dict() for f in faces]
    if frame.error:
        record["error"] = frame.error
    return record


def iso_utc(unix_seconds: float) -> str:
    """'2026-11-23T17:58:28.123Z'."""
    stamp = datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def run_loop(estimator: Estimator, source, tracker: Optional[IoUTracker] = None, video=None, json_writer=None,
             output=None, window=None, max_frames: Optional[int] = None, aligned: bool = False,
             stop: Optional[threading.Event] = None, on_result: Optional[Callable] = None,
             report_every: float = 5.0, live_view=None, pace_fps: Optional[float] = None) -> RunStats:
    stats = RunStats()
    stop = stop or threading.Event()
    started = last_report = time.perf_counter()
    fps = None
    stage = {"capture": 0.0, "detect": 0.0, "align": 0.0, "infer": 0.0, "track": 0.0, "draw": 0.0}
    iterator = iter(source)
    try:
        while not stop.is_set() and (max_frames is None or stats.frames < max_frames):
            t0 = time.perf_counter()
            frame = next(iterator, None)
            if frame is None:
                break
            t1 = time.perf_counter()
            stage["capture"] += t1 - t0
            faces = []
            if not frame.error:
                try:
                    if video is not None:
                        faces, timings = video.process(frame.image), video.timings
                    else:
                        faces, timings = estimator.predict(frame.image, aligned=aligned), estimator.timings
                except Exception as exc:  # one bad frame must not end an unattended run
                    frame = dataclasses.replace(frame, image=None, error=f"{frame.source}: frame {frame.index} "
                                                f"could not be processed ({type(exc).__name__}: {exc})")
                else:
                    for key, value in timings.items():
                        stage[key] += value
            if frame.error:
                stats.errors += 1
                log.error("%s", frame.error)
            t2 = time.perf_counter()
            if tracker is not None and video is None and not frame.error:
                faces = smooth_faces(faces, tracker, estimator)
            t3 = time.perf_counter()
            stage["track"] += t3 - t2
            stats.frames += 1
            stats.faces += len(faces)
            record = frame_record(frame, faces) if (json_writer or live_view) is not None else None
            if json_writer is not None:
                json_writer.write(record)
            if live_view is not None:  # stores references only: viewers never slow the loop
                live_view.publish(frame.image, faces, record, fps,
                                  {k: 1000.0 * v / stats.frames for k, v in stage.items()})
            if on_result is not None:
                on_result(frame, faces)
            if frame.image is not None and (output is not None or window is not None):
                sequential = getattr(source, "sequential", False)
                annotated = draw_faces(frame.image, faces, fps if sequential else None)
                if output is not None:
                    output.write(annotated, None if sequential else frame.source)
                if window is not None and not window.show(annotated):
                    stats.stopped_by = "window closed"
                    break
            stage["draw"] += time.perf_counter() - t3
            if pace_fps:  # play a file at its own frame rate (for viewers of the live view)
                time.sleep(max(0.0, started + stats.frames / pace_fps - time.perf_counter()))
            now = time.perf_counter()
            dt = now - t0
            fps = 1 / dt if fps is None else 0.9 * fps + 0.1 / max(dt, 1e-6)
            if now - last_report >= report_every:
                log.info("%d frames, %.1f FPS, %d faces in the last frame", stats.frames, fps, len(faces))
                last_report = now
        else:
            stats.stopped_by = "stop requested" if stop.is_set() else "max frames"
    except KeyboardInterrupt:
        stats.stopped_by = "interrupted"
        log.warning("interrupted: closing outputs")
    except SourceError as exc:  # a camera that stayed away past its reconnect window
        stats.stopped_by = "source lost"
        stats.source_lost = True
        log.error("%s", exc)
    finally:
        stats.seconds = time.perf_counter() - started
        stats.stage_seconds = stage
        for closable in (json_writer, output, window, source):  # the live view is the caller's to close
            if closable is not None:
                closable.close()
    return stats
