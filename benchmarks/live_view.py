r"""The live view (`agegender run --serve`): what a viewer costs the loop, and what the page shows.

1. Loop FPS at 1 thread on synthetic 640x480 frames of the shipped sample photo (one
   moving face), best of ``--repeats`` runs each: without a live view, with one viewer
   reading the MJPEG stream and the event feed as fast as it can, and with a stalled
   viewer (opens the stream, never reads).
2. With ``--screenshot``: serves a synthetic video, opens the page in headless Chromium
   (Debian's ``chromium`` package), waits for frames and saves a screenshot.

    python benchmarks/live_view.py --detector-model face_detection_yunet_2023mar.onnx \
        --json benchmarks/live_view/live_view.json --screenshot benchmarks/live_view/page.png
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np

from agegender.edge.benchmark import write_json
from agegender.edge.estimator import Estimator
from agegender.edge.live_view import LiveView
from agegender.edge.runner import run_loop
from agegender.edge.sources import FrameArrays
from agegender.edge.tracker import IoUTracker

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "edge", "samples", "astronaut.png")


def sample_frames(n: int, size=(640, 480)) -> list:
    image = cv2.cvtColor(cv2.imread(SAMPLE), cv2.COLOR_BGR2RGB)
    w, h = size
    image = cv2.resize(image, (w, w))[(w - h) // 2:(w - h) // 2 + h]
    # the face sways left and right by up to 40 px
    return [np.ascontiguousarray(np.roll(image, int(40 * np.sin(i / 15)), axis=1)) for i in range(n)]


def reader(view: LiveView, path: str, stop: threading.Event, counter: dict) -> None:
    """A viewer that reads a stream as fast as it comes."""
    conn = http.client.HTTPConnection(view.host, view.port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    while not stop.is_set():
        chunk = response.read1(65536) if hasattr(response, "read1") else response.read(4096)
        if not chunk:
            break
        counter[path] = counter.get(path, 0) + len(chunk)
    conn.close()


def measure(estimator, frames, repeats: int) -> dict:
    def fps(live_view=None):
        return run_loop(estimator, FrameArrays(frames), tracker=IoUTracker(), live_view=live_view).fps

    fps(None)  # warm-up
    results = {"no live view": [], "one viewer (stream + events)": [], "one stalled viewer": []}
    view = LiveView("127.0.0.1", 0, stream_fps=15.0)
    try:
        for _ in range(repeats):
            results["no live view"].append(fps(None))
            stop, counter = threading.Event(), {}
            threads = [threading.Thread(target=reader, args=(view, p, stop, counter), daemon=True)
                       for p in ("/stream.mjpg", "/events")]
            for t in threads:
                t.start()
            time.sleep(0.2)
            results["one viewer (stream + events)"].append(fps(view))
            stop.set()
            stalled = socket.create_connection((view.host, view.port))
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)
            results["one stalled viewer"].append(fps(view))
            stalled.close()
            time.sleep(0.3)
    finally:
        view.close()
    base = max(results["no live view"])
    return {name: {"fps_best": round(max(v), 1), "fps_runs": [round(x, 1) for x in v],
                   "relative_to_no_live_view": round(max(v) / base, 3)} for name, v in results.items()}


def screenshot(path: str, detector: str | None, wait_seconds: float) -> dict:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("no chromium here: apt-get install chromium")
    folder = tempfile.mkdtemp()
    video = os.path.join(folder, "sample.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for frame in sample_frames(1200):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    args = [sys.executable, "-m", "agegender.edge.cli", "run", "--source", video, "--serve", "127.0.0.1:0",
            "--realtime", "--threads", "1"] + (["--detector-model", detector] if detector else [])
    server = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    url = None
    for line in server.stderr:
        found = re.search(r"live view: (http://\S+)", line)
        if found:
            url = found.group(1)
            break
    threading.Thread(target=server.stderr.read, daemon=True).start()
    try:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--window-size=1100,600", f"--screenshot={os.path.abspath(path)}",
               f"--timeout={int(wait_seconds * 1000)}", url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not os.path.isfile(path):
            raise SystemExit(f"chromium failed ({done.returncode}): {done.stderr[-500:]}")
        with urllib_open(url + "faces") as f:
            faces = json.load(f)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    return {"url": url, "browser": subprocess.run([browser, "--version"], capture_output=True,
                                                   text=True).stdout.strip(), "faces_at_the_end": faces}


def urllib_open(url):
    import urllib.request

    return urllib.request.urlopen(url, timeout=10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector-model", default=os.environ.get("AGEGENDER_DETECTOR"))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--screenshot", default=None, metavar="PNG")
    parser.add_argument("--wait", type=float, default=4.0, help="seconds the page runs before the screenshot")
    args = parser.parse_args(argv)
    estimator = Estimator(detector=args.detector_model, threads=1)
    cv2.setNumThreads(1)
    result = {"frames": args.frames, "frame_size": "640x480", "threads": 1, "detector": estimator.detector_name
              if hasattr(estimator, "detector_name") else type(estimator.detector).__name__,
              "fps": measure(estimator, sample_frames(args.frames), args.repeats)}
    if args.screenshot:
        os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
        result["screenshot"] = {"file": os.path.basename(args.screenshot),
                                **screenshot(args.screenshot, args.detector_model, args.wait)}
    print(write_json(result, args.json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
