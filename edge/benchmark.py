"""``agegender benchmark``: model-only latency, end-to-end frame rate and memory.

Model-only: one face crop at batch 1, after warm-up: mean, std, p50, p90, p99, max,
plus init time, first-inference time and file size. End to end: the full loop
(detect, align, infer, track, draw) on synthetic 640x480 frames built from real
face crops (or on any source), with a per-stage breakdown. Peak RSS and a header
naming the machine. Medians are the numbers to quote.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import time
from typing import Iterable, Optional, Sequence

import numpy as np

from agegender.edge.estimator import averaging_label
from agegender.edge.model import AgeGenderModel


def latency_stats(seconds: Sequence[float]) -> dict:
    """Summary of latencies in milliseconds (percentiles by linear interpolation)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        raise ValueError("no timings")
    return {"runs": int(ms.size), "mean": float(ms.mean()), "std": float(ms.std()),
            "p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)), "max": float(ms.max()), "min": float(ms.min())}


def machine_info(threads: Optional[int]) -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.lower().startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "threads": threads}
    for module in ("numpy", "cv2", "ai_edge_litert", "onnxruntime"):
        try:
            info[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            pass
    for key, path in (("cpu_clock_hz", "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"),
                      ("board", "/proc/device-tree/model")):
        if os.path.exists(path):
            text = open(path).read().strip("\x00\n ")
            info[key] = int(text) * 1000 if text.isdigit() else text
    throttled = pi_throttled()
    if throttled is not None:
        info["pi_throttled"] = throttled
    return info


def pi_throttled() -> Optional[str]:
    """`vcgencmd get_throttled` on a Raspberry Pi (0x0: never throttled), else None."""
    import shutil
    import subprocess

    if not shutil.which("vcgencmd"):
        return None
    try:
        out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().partition("=")[2] or None


RUNTIME_DISTRIBUTIONS = ("agegender", "numpy", "opencv-python-headless", "opencv-python", "ai-edge-litert",
                         "tflite-runtime", "onnxruntime")


def installed_size_mb(distributions: Sequence[str] = RUNTIME_DISTRIBUTIONS) -> dict:
    """Installed size on disk of the runtime's packages (MB), from their file records."""
    from importlib import metadata

    sizes = {}
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        total = 0
        for entry in dist.files or []:
            path = entry.locate()
            if os.path.isfile(path):
                total += os.path.getsize(path)
        sizes[name] = round(total / 1e6, 1)
    return sizes


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclasses.dataclass
class ModelBenchmark:
    model: str
    size_mb: float
    init_ms: float
    first_ms: float
    latency: dict


def benchmark_model(path: str, threads: Optional[int], warmup: int, runs: int) -> ModelBenchmark:
    """Model-only latency of one face (batch 1) through the model object the runtime uses."""
    t0 = time.perf_counter()
    model = AgeGenderModel.open(path, threads)  # card read and the file's sha256 checked, as at run time
    init = time.perf_counter() - t0
    size = model.contract.size
    x = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    model.run(x)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        model.run(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.run(x)
        times.append(time.perf_counter() - t0)
    return ModelBenchmark(os.path.basename(path), os.path.getsize(path) / 1e6, init * 1000, first * 1000,
                          latency_stats(times))


def synthetic_frames(crops: Sequence[np.ndarray], faces: int, n: int, size=(640, 480), seed: int = 0,
                     same_faces: bool = False):
    """n frames of `faces` face crops pasted side by side on a plain background, drifting slowly:
    other crops in every frame (the still path's worst case), or with `same_faces` the same
    people throughout (a video, for video mode)."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    side = min(200, w // max(1, faces) - 10, h - 20)
    frames = []
    for i in range(n):
        frame = np.full((h, w, 3), 100, np.uint8)
        for k in range(faces):
            crop = cv2.resize(crops[k % len(crops) if same_faces else (i + k) % len(crops)], (side, side),
                              interpolation=cv2.INTER_AREA)
            x = 5 + k * (w // faces) + int(4 * np.sin(i / 5))
            y = (h - side) // 2 + int(rng.integers(-3, 4))
            frame[y:y + side, x:x + side] = crop
        frames.append(frame)
    return frames


WARMUP_FRAMES = 3


def benchmark_end_to_end(estimator, frames: Iterable[np.ndarray], warmup: int = WARMUP_FRAMES,
                         video_options=None) -> dict:
    """Median ms per stage over the frames (any iterable: a list, or frames read from a camera or
    video, whose read time is the capture stage), after `warmup` frames. Without `video_options`
    the still path on every frame plus the IoU tracker (`agegender run --mode frames`); with them,
    video mode (`agegender.edge.video`, `run`'s default for cameras and videos), whose p90 and mean
    are given too, since most of its frames are cheap and a few run the full detector."""
    from agegender.edge.outputs import draw_faces
    from agegender.edge.runner import smooth_faces
    from agegender.edge.tracker import IoUTracker

    tracker = IoUTracker()
    video = None
    if video_options is not None:
        from agegender.edge.video import VideoEstimator

        video = VideoEstimator(estimator, video_options)
    stages = {k: [] for k in ("capture", "detect", "align", "infer", "track", "draw", "total")}
    faces_found = []
    frames = iter(frames)
    while True:
        t_capture = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            break
        if warmup > 0:
            warmup -= 1
            estimator.predict(frame)  # warms the detector and the model; video mode starts afresh below
            continue
        t0 = time.perf_counter()
        stages["capture"].append(t0 - t_capture)
        if video is not None:
            faces = video.process(frame)
            timings = video.timings
            t1 = t2 = time.perf_counter()
        else:
            faces = estimator.predict(frame)
            timings = estimator.timings
            t1 = time.perf_counter()
            faces = smooth_faces(faces, tracker, estimator)
            t2 = time.perf_counter()
        draw_faces(frame, faces)
        t3 = time.perf_counter()
        for key, value in timings.items():
            stages[key].append(value)
        if video is None:
            stages["track"].append(t2 - t1)
        stages["draw"].append(t3 - t2)
        stages["total"].append(t3 - t_capture)
        faces_found.append(len(faces))
    if not stages["total"]:
        raise ValueError("no frames to time after the warm-up")
    out = {k: float(np.median(v) * 1000) for k, v in stages.items()}
    out["frames"] = len(stages["total"])
    out["fps_p50"] = 1000.0 / out["total"] if out["total"] > 0 else 0.0
    out["faces_found_mean"] = float(np.mean(faces_found))
    out["total_p90"] = float(np.percentile(stages["total"], 90) * 1000)
    out["total_mean"] = float(np.mean(stages["total"]) * 1000)
    if video is not None:
        out["full_detections"] = video.counts["full_detections"]
        out["estimates"] = video.counts["estimates"]
    return out


def faces_were_found(row: dict) -> bool:
    """False when a synthetic-frame row found clearly fewer faces than it pasted (its FPS is then
    not a figure for that many faces)."""
    expected = row.get("faces_expected")
    return expected is None or row.get("faces_found_mean", 0.0) >= 0.9 * expected


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('arch')}, {m.get('os')}, Python "
             f"{m.get('python')}, threads {m.get('threads')}; "
             + ", ".join(f"{k} {m[k]}" for k in ("ai_edge_litert", "onnxruntime", "cv2") if k in m), "",
             "| model | size (MB) | init (ms) | first (ms) | mean | std | p50 | p90 | p99 | max |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["models"]:
        lat = r["latency"]
        lines.append(f"| {r['model']} | {r['size_mb']:.2f} | {r['init_ms']:.1f} | {r['first_ms']:.1f} | "
                     + " | ".join(f"{lat[k]:.2f}" for k in ("mean", "std", "p50", "p90", "p99", "max")) + " |")
    if result.get("end_to_end"):
        averaging = averaging_label(result.get("flip", False), result.get("views", 1))
        lines += ["", f"End to end ({result['frame_size']} frames, median ms per frame"
                  + (f", {averaging}" if averaging else "") + "):", "",
                  "| faces pasted | faces found (mean) | capture | detect | align | infer | track | draw | total "
                  "| FPS (p50) |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for faces, r in result["end_to_end"].items():
            fps = f"{r['fps_p50']:.1f}" if faces_were_found(r) else "- (faces not found)"
            lines.append(f"| {faces} | {r.get('faces_found_mean', 0):.1f} | " + " | ".join(
                f"{r[k]:.2f}" for k in ("capture", "detect", "align", "infer", "track", "draw", "total"))
                + f" | {fps} |")
    if result.get("end_to_end_video"):
        lines += ["", "Video mode (`agegender run`'s default for cameras and videos: the full detector now and then, "
                  "a search around each face in between, age/gender until each face settles), ms per frame:", "",
                  "| faces pasted | faces found (mean) | detect | align | infer | track | draw | total p50 | p90 "
                  "| mean | FPS (p50) | full detections | estimates |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for faces, r in result["end_to_end_video"].items():
            fps = f"{r['fps_p50']:.1f}" if faces_were_found(r) else "- (faces not found)"
            lines.append(f"| {faces} | {r.get('faces_found_mean', 0):.1f} | " + " | ".join(
                f"{r[k]:.2f}" for k in ("detect", "align", "infer", "track", "draw", "total", "total_p90",
                                        "total_mean")) + f" | {fps} | {r['full_detections']}/{r['frames']} | "
                f"{r['estimates']} |")
    lines += ["", f"Peak RSS: {result['peak_rss_mb']:.0f} MB"]
    if result.get("installed_mb"):
        sizes = result["installed_mb"]
        lines.append(f"Installed size of the runtime: {sum(sizes.values()):.0f} MB ("
                     + ", ".join(f"{k} {v:.0f}" for k, v in sizes.items()) + ")")
    return "\n".join(lines)


def write_json(result: dict, path: Optional[str]) -> str:
    """The result as indented JSON; also written to ``path`` (its folder made) when one is given."""
    text = json.dumps(result, indent=2)
    if path:
        from agegender.edge.files import atomic_write_bytes

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write_bytes(path, (text + "\n").encode())
    return text


def write_report(folder: str, name: str, result: dict, markdown: str) -> None:
    """A benchmark's result as FOLDER/NAME.json and its table as FOLDER/NAME.md (folder made), and the
    table printed."""
    os.makedirs(folder, exist_ok=True)
    write_json(result, os.path.join(folder, name + ".json"))
    with open(os.path.join(folder, name + ".md"), "w") as f:
        f.write(markdown + "\n")
    print(markdown)
