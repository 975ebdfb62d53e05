"""The edge subcommands: ``run``, ``predict`` and ``models``. No TensorFlow anywhere here."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading

from agegender.edge import cli_args

log = logging.getLogger("agegender")


def add_common_model_args(p) -> None:
    p.add_argument("--model", default=None,
                   help="age/gender model .tflite or .onnx (default: the shipped int8 TFLite, or $AGEGENDER_MODEL)")
    p.add_argument("--detector-model", default=None,
                   help="YuNet .onnx (default: $AGEGENDER_DETECTOR, then the user cache; else the Haar cascade)")
    p.add_argument("--threads", type=cli_args.positive_int, default=None, help="inference threads (default: runtime's)")
    p.add_argument("--max-faces", type=cli_args.positive_int, default=10, help="faces per frame at most (largest first)")
    p.add_argument("--min-face", type=cli_args.positive_int, default=24, help="skip faces smaller than this (px)")
    p.add_argument("--score-threshold", type=cli_args.positive_float, default=None,
                   help="YuNet's confidence threshold (default 0.7; the Haar fallback has none)")

    p.add_argument("--detect-size", type=cli_args.positive_int, default=None, metavar="PX",
                   help="the detector sees the frame downscaled to this longest side (default 320: "
                        "fast, finds faces down to ~24 px in a 640x480 frame; raise it for small, distant faces)")


def add_views_arg(p, default: int, why: str) -> None:
    p.add_argument("--views", type=cli_args.alignment_views, default=default, metavar="N",
                   help="cut every face N slightly different ways (1-5) and average the answers, N x the model "
                        f"time, about 1.3 ms per view and face at 1 thread, doubled by --flip (default {default}: "
                        f"{why})")


def make_estimator(args):
    from agegender.edge.estimator import Estimator

    if args.threads:
        import cv2

        cv2.setNumThreads(args.threads)  # the detector runs in OpenCV's own thread pool

    return Estimator(model=args.model, detector=args.detector_model, threads=args.threads,
                     max_faces=args.max_faces, min_face=args.min_face, score_threshold=args.score_threshold,
                     detect_max_side=args.detect_size, flip=args.flip, views=args.views,
                     second_detect_size=getattr(args, "second_detect_size", None),
                     refine_landmarks=getattr(args, "refine_landmarks", False))


# --- run ------------------------------------------------------------------------

def add_run(sub) -> None:
    p = cli_args.add_command(
        sub, "run", help="the camera loop: live age/gender on a camera, video or pictures",
        description="Detect faces, align them like the training crops, estimate age and gender,\n"
                    "track faces across frames and keep their numbers steady. Shows live FPS.",
        epilog="""examples:
  agegender run --source 0 --display                 # laptop webcam, in a window
  agegender run --source picam --json faces.jsonl    # Raspberry Pi camera
  agegender run --source clip.mp4 --output annotated.mp4 --max-frames 300
  agegender run --source clip.mp4 --mode frames      # the still path on every frame
  agegender run --source photos/ --output annotated/ # a folder of pictures
  agegender run --source picam --serve 0.0.0.0:8080 --serve-token SECRET
                        # headless Pi: open http://PI:8080/?token=SECRET in a browser

Stops at the end of a file, after --max-frames, on Ctrl-C or SIGTERM; the JSON Lines
and video outputs are flushed and closed either way.""")
    p.add_argument("--source", default="0", help="picam | camera index | video | image | folder | glob (default 0)")
    add_common_model_args(p)
    p.add_argument("--flip", action="store_true",
                   help="also estimate every face mirrored and average the two, twice the model time (about "
                        "1.3 ms more per face at 1 thread); off by default in run: on the synthetic videos of "
                        "benchmarks/README.md it did not make video mode's ages better (+0.14 y), as video mode "
                        "already averages each face over its estimates")
    add_views_arg(p, 1, "on the synthetic videos of benchmarks/README.md 3 or 5 views did not make video mode's "
                        "ages better, as it already averages each face over its estimates")
    p.add_argument("--refine-landmarks", action="store_true",
                   help="find each face's landmarks again in its face crop before each estimate, as `predict` "
                        "does by default (about 3.5 ms more per estimate at 1 thread; on the synthetic videos "
                        "gender +2 points but ages 0.3 y worse: off by default; needs YuNet)")
    p.add_argument("--json", default=None,
                   help="append JSON Lines (one object per frame) to this file ('-' = stdout)")
    p.add_argument("--output", default=None,
                   help="annotated video (.mp4/.avi/.mkv/.mov), a folder for annotated pictures, or a picture "
                        "file (.jpg/.png) when the source is one picture")
    p.add_argument("--segment-seconds", type=cli_args.positive_float, default=60.0,
                   help="an --output video is written in files of this many seconds of video (out.mp4, "
                        "out.001.mp4, ...): a run killed outright loses at most the one being written "
                        "(default %(default)s)")
    p.add_argument("--display", action="store_true", help="show a window (needs GUI OpenCV)")
    p.add_argument("--max-frames", type=cli_args.positive_int, default=None, help="stop after N frames")
    p.add_argument("--smoothing", type=cli_args.fraction, default=0.3,
                   help="--mode frames: weight of the newest frame's estimate of a face, in (0, 1], scaled by "
                        "the face's quality (1 = no smoothing; default %(default)s). Video mode averages a face's "
                        "estimates, weighted by quality, over its last 20 or so")
    add_video_mode_args(p)
    p.add_argument("--reconnect-seconds", type=cli_args.positive_float, default=10.0,
                   help="how long to keep reopening a camera that stopped delivering frames")
    p.add_argument("--serve", default=None, metavar="[HOST:]PORT", type=serve_address,
                   help="live view in a browser: the annotated stream, the faces and FPS at http://HOST:PORT/ "
                        "(/stream.mjpg, /faces, /events, /stats, /healthz). Binds to 127.0.0.1 unless HOST is "
                        "given (0.0.0.0: every interface)")
    p.add_argument("--serve-token", default=None, metavar="TOKEN",
                   help="require this token on every request (?token=TOKEN or 'Authorization: Bearer TOKEN'); "
                        "default: $AGEGENDER_SERVE_TOKEN, else none")
    p.add_argument("--serve-max-viewers", type=cli_args.positive_int, default=4,
                   help="streams served at once at most (default %(default)s)")
    p.add_argument("--realtime", action="store_true",
                   help="play a video file or picture folder at its own frame rate (--realtime-fps for pictures) "
                        "instead of as fast as possible, e.g. to watch it through --serve")
    p.add_argument("--realtime-fps", type=cli_args.positive_float, default=None,
                   help="frame rate for --realtime (default: the video's own, or 1 for pictures)")
    p.add_argument("--serve-fps", type=cli_args.positive_float, default=15.0,
                   help="frames per second sent to each viewer at most (default %(default)s)")
    p.set_defaults(func=cmd_run)


def add_video_mode_args(p) -> None:
    from agegender.edge.video import VideoOptions

    d = VideoOptions()
    g = p.add_argument_group(
        "video mode", "Cameras and video files run in video mode: the full-frame detector only now and then, a "
        "cheap search around each tracked face in between, and age/gender per face until its answer settles. "
        "Defaults measured on synthetic videos with known truth (benchmarks/README.md, video mode).")
    g.add_argument("--mode", choices=["video", "frames"], default="video",
                   help="video (default): detect less, estimate each face until it settles; frames: the still "
                        "path on every frame, smoothed by an IoU tracker (the behaviour before video mode)")
    g.add_argument("--detect-every", type=cli_args.positive_int, default=d.detect_every, metavar="N",
                   help="run the full-frame detector at least every N frames (also when something moves outside "
                        "the tracked faces, or a tracked face is not found; default %(default)s)")
    g.add_argument("--reestimate-every", type=cli_args.positive_int, default=d.reestimate_every, metavar="K",
                   help="estimate a settled face again every K frames (and soon when it changes much in size "
                        "or pose; default %(default)s)")
    g.add_argument("--settle-std", type=cli_args.positive_float, default=d.settle_age_std, metavar="YEARS",
                   help=f"a face has settled when its last {d.settle_estimates} age estimates agree within this "
                        "standard deviation and their gender calls agree (default %(default)s)")
    g.add_argument("--roi-scale", type=cli_args.positive_float, default=d.roi_scale, metavar="BOXES",
                   help="side of the region searched around each tracked face, in face boxes (default %(default)s)")
    g.add_argument("--track-face-px", type=cli_args.positive_float, default=d.track_face_px, metavar="PX",
                   help="how large a tracked face is seen in its region between full detections; smaller is "
                        "cheaper but loses faces (32 px did; default %(default)s)")
    g.add_argument("--motion-threshold", type=cli_args.non_negative_float, default=d.motion_threshold,
                   metavar="LEVELS", help="grey-level change outside the tracked faces that calls the full "
                   "detector (a face walking in); 0 = only every --detect-every frames (default %(default)s)")
    g.add_argument("--forget-after", type=cli_args.positive_int, default=d.forget_after, metavar="FRAMES",
                   help="how long a face that left keeps its id for when it comes back (default %(default)s)")


def video_options(args):
    from agegender.edge.errors import AgeGenderError
    from agegender.edge.video import VideoOptions

    try:
        return VideoOptions(detect_every=args.detect_every, reestimate_every=args.reestimate_every,
                            settle_age_std=args.settle_std, roi_scale=args.roi_scale,
                            track_face_px=args.track_face_px,
                            motion_threshold=args.motion_threshold, forget_after=args.forget_after)
    except ValueError as exc:
        raise AgeGenderError(f"video mode: {exc}") from None


def serve_address(text: str) -> tuple:
    import argparse

    from agegender.edge.live_view import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def refuse_overwriting_the_source(source: str, *outputs) -> None:
    """An output that is the source itself would destroy the input: refused before anything opens."""
    from agegender.edge.errors import AgeGenderError

    for out in outputs:
        if out and out != "-" and os.path.exists(out) and os.path.exists(source) and os.path.samefile(out, source):
            raise AgeGenderError(f"{out} is the source itself: writing there would destroy it; choose another name")


def cmd_run(args) -> int:
    from agegender.edge.outputs import AnnotatedOutput, JsonLinesWriter, Window
    from agegender.edge.runner import run_loop
    from agegender.edge.sources import open_source
    from agegender.edge.tracker import IoUTracker
    from agegender.edge.video import VideoEstimator

    refuse_overwriting_the_source(args.source, args.output, args.json)
    options = video_options(args)  # checked before anything opens
    estimator = make_estimator(args)
    source = open_source(args.source, reconnect_seconds=args.reconnect_seconds)
    live_view = None
    if args.serve is not None:
        import os

        from agegender.edge.live_view import LiveView

        live_view = LiveView(*args.serve, token=args.serve_token or os.environ.get("AGEGENDER_SERVE_TOKEN"),
                             max_viewers=args.serve_max_viewers, stream_fps=args.serve_fps)
        print(f"live view: {live_view.url}", file=sys.stderr, flush=True)
    # SIGTERM and Ctrl-C (SIGINT) both let the frame in hand finish, so the JSON Lines and the video
    # always hold the same frames, then close the outputs; exit 143 and 130 as a shell expects.
    stop, signals = threading.Event(), []

    def on_signal(number, _frame):
        signals.append(number)
        stop.set()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        sequential = getattr(source, "sequential", False)
        stats = run_loop(
            estimator, source,
            tracker=IoUTracker(smoothing=args.smoothing) if sequential and args.mode == "frames" else None,
            video=VideoEstimator(estimator, options) if sequential and args.mode == "video" else None,
            json_writer=JsonLinesWriter(args.json) if args.json else None,
            output=AnnotatedOutput(args.output, getattr(source, "fps", 30.0),
                                   len(source.paths) if hasattr(source, "paths") else 0,
                                   segment_seconds=args.segment_seconds) if args.output else None,
            window=Window() if args.display else None, max_frames=args.max_frames, stop=stop,
            live_view=live_view,
            pace_fps=(args.realtime_fps or getattr(source, "fps", None) or 1.0) if args.realtime else None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if live_view is not None:
            live_view.close()
    if signals:
        stats.stopped_by = "interrupted" if signals[0] == signal.SIGINT else "stop requested"
    log.info("%s", run_summary(stats, sequential=getattr(source, "sequential", False)))
    if stats.stopped_by == "stop requested":
        return 143  # terminated by SIGTERM, outputs closed
    if stats.stopped_by == "interrupted":
        return 130  # Ctrl-C, outputs closed
    return 0 if stats.frames > stats.errors and not stats.source_lost else 1


STOPPED = {"end of source": "at the end of the source", "max frames": "after --max-frames",
           "stop requested": "by SIGTERM", "interrupted": "by Ctrl-C", "window closed": "when the window closed",
           "source lost": "because the source was lost"}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def run_summary(stats, sequential: bool = True) -> str:
    """'120 frames, 118 faces in 1.2 s (100.0 FPS); stopped at the end of the source'."""
    rate = f" ({stats.fps:.1f} FPS)" if sequential and stats.frames > 1 else ""
    return (f"{plural(stats.frames, 'frame')}, {plural(stats.faces, 'face')} in {stats.seconds:.1f} s{rate}; "
            f"stopped {STOPPED.get(stats.stopped_by, stats.stopped_by)}")


# --- predict ----------------------------------------------------------------------

def add_predict(sub) -> None:
    p = cli_args.add_command(
        sub, "predict", help="age/gender for still pictures (files, folders, globs)",
        description="Estimate age and gender for every face in still pictures.",
        epilog="""examples:
  agegender predict group_photo.jpg
  agegender predict shots/ --json > faces.jsonl
  agegender predict UTKFace/ --aligned --json         # inputs already are face crops

A bad file is reported on stderr (and marked in --json output) and the others are
still processed. Exit status: 0, or 1 when nothing was readable, or with --strict
when any file failed.""")
    p.add_argument("paths", nargs="+", help="pictures, folders or glob patterns")
    add_common_model_args(p)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="average every face with its mirror image (default on for still pictures: steadier and "
                        "more accurate for 1.3 ms more per face; --no-flip turns it off)")
    add_views_arg(p, 5, "for still pictures the age moves a third to a half less with small shifts of the "
                        "landmarks, no less accurate; --views 1 is the fastest")
    p.add_argument("--second-detect-size", type=cli_args.positive_int, default=None, metavar="PX",
                   help="also detect at this longest side (e.g. 640) and average each face's landmarks over the "
                        "two passes (default off: on validation the age moved a quarter to a third less across "
                        "detector sizes but was no more accurate, and at 640 a one-face picture took 41 ms instead "
                        "of 22; refined landmarks, the default since, steady as much for less; benchmarks/accuracy.md)")
    p.add_argument("--refine-landmarks", action=argparse.BooleanOptionalAction, default=True,
                   help="find each face's landmarks again in its face crop, as training found them (default on "
                        "for still pictures: on 600 validation faces pasted into frames the age moved a fifth to a "
                        "quarter less across detector sizes and jitter, the gender call flipped on 21 faces instead "
                        "of 33, no less accurate, for about 3.5 ms more per face at 1 thread; needs YuNet; "
                        "--no-refine-landmarks turns it off; benchmarks/accuracy.md)")
    p.add_argument("--aligned", action="store_true", help="inputs are training-style face crops: skip detection")
    p.add_argument("--json", action="store_true", help="JSON Lines on stdout, one object per picture")
    p.add_argument("--output", default=None,
                   help="annotated pictures: a folder, or a picture file (.jpg/.png) for a single picture")
    p.add_argument("--strict", action="store_true", help="exit 1 if any file could not be read")
    p.set_defaults(func=cmd_predict)


def face_words(face) -> str:
    """'age 34 ± 5 (adult), female 0.93', or only what the model predicts."""
    parts = []
    if face.age is not None:
        parts.append(f"age {face.age:.0f} ± {face.age_std:.0f} ({face.age_group})")
    elif face.age_group is not None:
        parts.append(f"age group {face.age_group}")
    if face.gender is not None:
        parts.append(f"{face.gender} {face.gender_prob:.2f}")
    return ", ".join(parts)


def cmd_predict(args) -> int:
    from agegender.edge.outputs import AnnotatedOutput, JsonLinesWriter
    from agegender.edge.runner import run_loop
    from agegender.edge.sources import ImageFiles, SourceError, open_source

    estimator = make_estimator(args)
    paths: list[str] = []
    missing = 0
    for spec in args.paths:
        try:
            source = open_source(spec)
        except SourceError as exc:
            log.error("%s", exc)
            missing += 1
            continue
        if not isinstance(source, ImageFiles):
            log.error("%s: not a picture (use `agegender run --source` for videos and cameras)", spec)
            missing += 1
            continue
        paths += source.paths

    def show(frame, faces):
        if args.json or frame.error:
            return
        if not faces:
            print(f"{frame.source}: no face found")
        for face in faces:
            x, y, w, h = face.box
            print(f"{frame.source}: face at ({x}, {y}, {w}x{h}): {face_words(face)}")

    stats = run_loop(estimator, ImageFiles(paths, "arguments"), aligned=args.aligned,
                     json_writer=JsonLinesWriter("-") if args.json else None,
                     output=AnnotatedOutput(args.output, pictures=len(paths)) if args.output else None,
                     on_result=show)
    errors = stats.errors + missing
    if errors:
        log.warning("%d of %d inputs could not be read", errors, stats.frames + missing)
    if stats.frames - stats.errors == 0:
        return 1
    return 1 if args.strict and errors else 0


# --- models -----------------------------------------------------------------------

def add_models(sub) -> None:
    p = cli_args.add_command(
        sub, "models", help="list installed models, or fetch the YuNet face detector",
        description="`agegender models list` shows the installed age/gender models and face detectors,\n"
                    "with sizes and sha256 checksums. `agegender models fetch` downloads the YuNet face\n"
                    "detector from the OpenCV model zoo into the user cache and checks its sha256.",
        epilog="""examples:
  agegender models list
  agegender models fetch
  agegender models fetch --url http://mirror.local/face_detection_yunet_2023mar.onnx""")
    p.add_argument("action", choices=["list", "fetch"])
    p.add_argument("--url", default=None, help="download from this address instead of the OpenCV model zoo")
    p.add_argument("--dest", default=None, help="folder to fetch into (default: the user cache)")
    p.add_argument("--detector-model", default=None, help="also list this detector file")
    p.set_defaults(func=cmd_models)


def cmd_models(args) -> int:
    from agegender.edge import zoo

    if args.action == "fetch":
        path = zoo.fetch(url=args.url or zoo.YUNET_URL, dest_dir=args.dest)
        print(f"YuNet face detector: {path} (sha256 verified)")
        return 0
    in_use = zoo.detector_in_use(args.detector_model)  # a missing --detector-model is an error here
    models = zoo.list_models(args.detector_model)
    if not models:
        print("no models found")
        return 1
    width = max(len(m.name) for m in models)
    for m in models:
        flag = " (default)" if m.default else ""
        print(f"{m.name:<{width}}  {m.kind:<13}  {m.size_bytes / 1e6:7.2f} MB  sha256 {m.sha256[:16]}…  "
              f"{m.path}{flag}")
    print(in_use)
    return 0


# --- benchmark ------------------------------------------------------------------

def frame_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError("frames must be at least 64x64")
    return w, h


def add_benchmark(sub) -> None:
    p = cli_args.add_command(
        sub, "benchmark", help="latency per face, frames per second end to end, memory",
        description="Model-only latency (batch 1, after warm-up: mean/std/p50/p90/p99/max, init and\n"
                    "first-inference time, size) for each model, then the full loop on synthetic frames\n"
                    "built from real face crops with 1, 2 and 4 faces (or on --source), per stage\n"
                    "(capture, detect, align, infer, track, draw), peak memory and the installed size of\n"
                    "the runtime. Quote the medians; peers: benchmarks/peer_compare.py.",
        epilog="""examples:
  agegender benchmark --threads 1 --crops $AGEGENDER_DATA --detector-model yunet.onnx
  agegender benchmark --model models/agegender_mnv2_128_int8.tflite --runs 500 --json bench.json
  agegender benchmark --source 0 --frames 300     # the real camera, capture included""")
    p.add_argument("--model", action="append", default=None, help="model file (repeatable; default: all shipped)")
    p.add_argument("--detector-model", default=None, help="YuNet .onnx for the end-to-end loop")
    p.add_argument("--crops", default=None, help="folder of face crops for the synthetic frames (default: "
                   "$AGEGENDER_DATA, else the faces of the sample photo shipped with the package)")
    p.add_argument("--source", default=None,
                   help="time the loop on this camera index, picam, or video file instead of synthetic frames "
                        "(adds the capture stage)")
    p.add_argument("--threads", type=cli_args.positive_int, default=1, help="inference threads (default 1)")
    p.add_argument("--detect-size", type=cli_args.positive_int, default=None, metavar="PX",
                   help="longest side of the frame the detector sees (default 320)")
    p.add_argument("--flip", action="store_true",
                   help="time the loops with mirror averaging on (as `predict` runs by default)")
    p.add_argument("--views", type=cli_args.alignment_views, default=1, metavar="N",
                   help="time the loops averaging each face over N alignment views (default %(default)s)")
    p.add_argument("--second-detect-size", type=cli_args.positive_int, default=None, metavar="PX",
                   help="time the loops with a second detection at PX (as `predict --second-detect-size`)")
    p.add_argument("--refine-landmarks", action="store_true",
                   help="time the loops finding each face's landmarks again in its crop (as `predict` runs "
                        "by default)")
    p.add_argument("--warmup", type=cli_args.non_negative_int, default=50, help="untimed runs first (default %(default)s)")
    p.add_argument("--runs", type=cli_args.positive_int, default=500, help="timed runs per model (default %(default)s)")
    p.add_argument("--frames", type=cli_args.positive_int, default=100, help="frames per end-to-end run (default %(default)s)")
    p.add_argument("--frame-size", type=frame_size, default=(640, 480), help="WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--json", default=None, help="write the results as JSON")
    p.add_argument("--markdown", default=None, help="write the results as Markdown")
    p.set_defaults(func=cmd_benchmark)


def benchmark_crops(folder, estimator) -> list:
    """Face crops for the synthetic video: the first 8 of a crops folder, else the faces the
    estimator finds in the sample photo shipped with the package (so it runs anywhere)."""
    import os

    from agegender.edge.contract import face_input
    from agegender.edge.errors import AgeGenderError
    from agegender.edge.images import list_images, read_canonical, read_image

    if folder:
        if not os.path.isdir(folder):
            raise AgeGenderError(f"--crops {folder}: no such folder")
        crops = [read_canonical(p) for p in list_images(folder)[:8]]
        if not crops:
            raise AgeGenderError(f"--crops {folder}: no pictures in this folder to build frames from")
        return crops
    sample = os.path.join(os.path.dirname(__file__), "samples", "astronaut.png")
    log.info("no --crops folder (or $AGEGENDER_DATA): synthetic frames from the faces in %s", sample)
    image = read_image(sample)
    canonical = estimator.contract.with_size(estimator.contract.canonical_size)
    crops = [face_input(image, canonical, landmarks=d.landmarks, box=d.box) for d in estimator.detect(image)]
    if not crops:
        raise AgeGenderError(f"no face found in {sample}: pass --crops DIR")
    return crops


def runnable_here(paths: list) -> list:
    """The shipped models this install can run; the others are skipped with a one-line note."""
    import importlib

    needs = {".onnx": ("onnxruntime", "pip install 'agegender[onnx]'"),
             ".tflite": ("ai_edge_litert", "pip install ai-edge-litert")}
    out = []
    for path in paths:
        module, hint = next((v for k, v in needs.items() if path.endswith(k)), (None, ""))
        try:
            if module:
                importlib.import_module(module)
        except ImportError:
            print(f"skipped {os.path.basename(path)}: needs {module}, not installed ({hint})")
            continue
        out.append(path)
    if not out:
        raise SystemExit("agegender benchmark: no shipped model can run here: install ai-edge-litert or onnxruntime")
    return out


def cmd_benchmark(args) -> int:
    import os

    from agegender.edge import benchmark as B
    from agegender.edge import zoo
    from agegender.edge.estimator import Estimator
    from agegender.edge.video import VideoOptions

    shipped = sorted((m for m in zoo.list_models() if m.kind == "age/gender"
                      and m.path.endswith((".tflite", ".onnx"))), key=lambda m: not m.default)
    models = args.model or runnable_here([m.path for m in shipped])  # the default model first: it runs end to end
    result = {"machine": B.machine_info(args.threads), "models": [], "end_to_end": {},
              "frame_size": f"{args.frame_size[0]}x{args.frame_size[1]}", "flip": args.flip, "views": args.views,
              "second_detect_size": args.second_detect_size, "refine_landmarks": args.refine_landmarks}
    for path in models:
        log.info("model-only: %s", path)
        result["models"].append(dataclasses.asdict(B.benchmark_model(path, args.threads, args.warmup, args.runs)))
    import cv2

    cv2.setNumThreads(args.threads)  # the detector runs in OpenCV's own thread pool
    estimator = Estimator(model=models[0], detector=args.detector_model, threads=args.threads,
                          detect_max_side=args.detect_size, flip=args.flip, views=args.views,
                          second_detect_size=args.second_detect_size, refine_landmarks=args.refine_landmarks)
    if args.source:
        import itertools

        from agegender.edge.sources import open_source

        source = open_source(args.source, reconnect_seconds=0)
        log.info("end to end: %d frames of %s", args.frames, args.source)
        frames = (f.image for f in itertools.islice(source, args.frames + B.WARMUP_FRAMES) if f.image is not None)
        result["end_to_end"][args.source] = B.benchmark_end_to_end(estimator, frames)
        source.close()
        source = open_source(args.source, reconnect_seconds=0)
        frames = (f.image for f in itertools.islice(source, args.frames + B.WARMUP_FRAMES) if f.image is not None)
        result["end_to_end_video"] = {args.source: B.benchmark_end_to_end(estimator, frames,
                                                                          video_options=VideoOptions())}
        result["frame_size"] = "source"
        source.close()
    else:
        crops = benchmark_crops(args.crops or os.environ.get("AGEGENDER_DATA"), estimator)
        for faces in (1, 2, 4):
            frames = B.synthetic_frames(crops, faces, args.frames + B.WARMUP_FRAMES, args.frame_size)
            log.info("end to end: %d face(s) per frame", faces)
            row = B.benchmark_end_to_end(estimator, frames)
            row["faces_expected"] = faces
            if not B.faces_were_found(row):
                log.warning("end to end with %d face(s) per frame: the detector found %.1f on average, so its "
                            "FPS is not a figure for %d face(s); shown as '-'", faces, row["faces_found_mean"], faces)
            result["end_to_end"][str(faces)] = row
            moving = B.synthetic_frames(crops, faces, args.frames + B.WARMUP_FRAMES, args.frame_size, same_faces=True)
            result.setdefault("end_to_end_video", {})[str(faces)] = B.benchmark_end_to_end(
                estimator, moving, video_options=VideoOptions()) | {"faces_expected": faces}
    result["installed_mb"] = B.installed_size_mb()
    result["peak_rss_mb"] = B.peak_rss_mb()
    text = B.to_markdown(result)
    print(text)
    if args.json:
        B.write_json(result, args.json)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 0


def add_edge_commands(sub) -> None:
    for add in (add_run, add_predict, add_models, add_benchmark):
        add(sub)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the agegender command")
