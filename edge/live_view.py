"""A live view over HTTP for a headless Pi: the annotated camera in a browser, results as a feed.

``agegender run --serve [HOST:]PORT`` starts ``LiveView`` beside the camera loop. It
serves, with the standard library only:

==================  ==============================================================
``/``               a page: the live annotated stream, the current faces as a table,
                    FPS and per-stage times
``/stream.mjpg``    the annotated frames (MJPEG, ``multipart/x-mixed-replace``)
``/faces``          the latest frame's result as JSON (the JSON Lines schema)
``/events``         results as server-sent events, one message per frame (same schema)
``/stats``          FPS, per-stage milliseconds, frames, viewers (JSON; the page polls it)
``/healthz``        ``{"status": "ok", ...}`` for supervisors; 503 once frames stop coming
==================  ==============================================================

Safe by default: it binds to 127.0.0.1 unless a host is given, ``token`` (``--serve-token``)
is then required on every request (``?token=`` or ``Authorization: Bearer``), and at most
``max_viewers`` streams (MJPEG or events) are served at once (503 beyond).

The camera loop never waits for a viewer: ``publish`` only stores references to the
newest frame and result under a lock (newest frame wins). Each viewer's own thread
draws and JPEG-encodes the newest frame when it is ready for one (one encoding per frame
is shared by all viewers), so a viewer that reads slowly, or not at all, only skips
frames; it never slows the loop. Sockets time out, so a stalled viewer is dropped.
"""
from __future__ import annotations

import collections
import contextlib
import hmac
import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlsplit

import cv2

from agegender.edge.errors import AgeGenderError
from agegender.edge.outputs import draw_faces, json_line

log = logging.getLogger(__name__)

BOUNDARY = "agegenderframe"
STALE_SECONDS = 10.0  # /healthz turns 503 when no frame came for this long
SOCKET_TIMEOUT = 10.0


def parse_address(text: str) -> tuple[str, int]:
    """``"8080"`` -> ("127.0.0.1", 8080); ``"0.0.0.0:8080"`` -> ("0.0.0.0", 8080); ``"[::1]:80"`` too."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected [HOST:]PORT with PORT 0-65535, got {text!r}")
    return host, int(port)


class LiveView:
    """The HTTP server and the newest frame it shows. Call ``publish`` once per frame."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, token: Optional[str] = None,
                 max_viewers: int = 4, stream_fps: float = 15.0, jpeg_quality: int = 80, draw=None):
        self.token = token or None
        self.max_viewers = max_viewers
        self.stream_interval = 1.0 / stream_fps if stream_fps > 0 else 0.0
        self.jpeg_quality = jpeg_quality
        self.draw = draw or draw_faces
        self._lock = threading.Condition()
        self._seq = 0
        self._frame = None  # (image, faces, fps) of the newest frame
        self._record: Optional[dict] = None
        self._records: collections.deque = collections.deque(maxlen=64)  # (seq, record) for /events
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._encode_lock = threading.Lock()
        self._stats: dict = {"fps": None, "stage_ms": {}, "frames": 0}
        self._last_publish = 0.0
        self._viewers = threading.BoundedSemaphore(max_viewers)
        self.viewers = 0
        self.closed = threading.Event()
        try:
            self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        except OSError as exc:
            raise AgeGenderError(f"--serve {host}:{port}: cannot listen there ({exc.strerror or exc})") from None
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="live-view", daemon=True)
        self._thread.start()
        if host not in ("127.0.0.1", "localhost", "::1") and not self.token:
            log.warning("the live view is open to the network without a token: anyone who can reach "
                        "%s:%d sees the camera (add --serve-token)", host, self.port)
        log.info("live view on %s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # --- the camera loop's side -------------------------------------------------
    def publish(self, image, faces, record: dict, fps: Optional[float] = None,
                stage_ms: Optional[dict] = None) -> None:
        """Store the newest frame and its result; wakes waiting viewers. Never blocks on them."""
        with self._lock:
            self._seq += 1
            if image is not None:
                self._frame = (image, list(faces), fps)
            self._record = record
            self._records.append((self._seq, record))
            self._stats = {"fps": fps, "stage_ms": stage_ms or {}, "frames": self._seq}
            self._last_publish = time.time()
            self._lock.notify_all()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        with self._lock:
            self._lock.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- what viewers get -----------------------------------------------------------
    def wait_newer(self, seq: int, timeout: float = 1.0) -> int:
        with self._lock:
            self._lock.wait_for(lambda: self._seq > seq or self.closed.is_set(), timeout)
            return self._seq

    def jpeg(self) -> tuple[int, bytes]:
        """(seq, JPEG bytes) of the newest frame, encoded once and shared by every viewer."""
        with self._lock:
            seq, frame = self._seq, self._frame
        with self._encode_lock:
            if self._jpeg[0] != seq and frame is not None:
                image, faces, fps = frame
                bgr = cv2.cvtColor(self.draw(image, faces, fps), cv2.COLOR_RGB2BGR)
                ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                if ok:
                    self._jpeg = (seq, data.tobytes())
            return self._jpeg

    def records_after(self, seq: int) -> list[tuple[int, dict]]:
        with self._lock:
            return [(s, r) for s, r in self._records if s > seq]

    def snapshot(self) -> dict:
        with self._lock:
            return {"record": self._record, "stats": dict(self._stats), "last_publish": self._last_publish}

    def authorised(self, headers, query: dict) -> bool:
        if not self.token:
            return True
        given = (query.get("token") or [""])[0]
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[len("Bearer "):].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _handler_class(self):
        view = self

        class Handler(LiveViewHandler):
            live_view = view
        return Handler


class LiveViewHandler(BaseHTTPRequestHandler):
    """Routes of the live view (see the module docstring)."""

    live_view: LiveView
    server_version = "agegender-live"
    timeout = SOCKET_TIMEOUT

    def log_message(self, fmt, *args):  # the access log goes to debug logging, not stderr
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_GET(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        routes = {"/": self.page, "/index.html": self.page, "/stream.mjpg": self.stream, "/faces": self.faces,
                  "/events": self.events, "/stats": self.stats, "/healthz": self.healthz}
        route = routes.get(parts.path)
        if route is None:
            return self.send_json({"error": "not found", "paths": sorted(routes)}, HTTPStatus.NOT_FOUND)
        if not self.live_view.authorised(self.headers, query):
            return self.send_json({"error": "a valid token is required (?token=... or Authorization: Bearer)"},
                                  HTTPStatus.UNAUTHORIZED)
        try:
            route()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            log.debug("viewer %s went away", self.address_string())

    # --- plain answers ------------------------------------------------------------
    def send_body(self, body: bytes, content_type: str, status=HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, data, status=HTTPStatus.OK) -> None:
        self.send_body(json_line(data).rstrip(b"\n"), "application/json", status)

    def page(self):
        token = self.live_view.token
        suffix = f"?token={token}" if token else ""
        self.send_body(PAGE.replace("{{SUFFIX}}", json.dumps(suffix)).encode(), "text/html; charset=utf-8")

    def faces(self):
        record = self.live_view.snapshot()["record"]
        self.send_json(record if record is not None else {"frame": None, "faces": []})

    def stats(self):
        snap = self.live_view.snapshot()
        self.send_json({**snap["stats"], "viewers": self.live_view.viewers,
                        "max_viewers": self.live_view.max_viewers})

    def healthz(self):
        snap = self.live_view.snapshot()
        age = time.time() - snap["last_publish"] if snap["last_publish"] else None
        healthy = age is not None and age < STALE_SECONDS
        self.send_json({"status": "ok" if healthy else "no frames", "frames": snap["stats"].get("frames", 0),
                        "seconds_since_last_frame": None if age is None else round(age, 3)},
                       HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE)

    # --- streams (each holds one viewer slot) -------------------------------------------
    @contextlib.contextmanager
    def _stream(self, content_type: str):
        """Hold a viewer slot and send the stream's headers; yields False (after a 503) when all
        slots are taken."""
        view = self.live_view
        if not view._viewers.acquire(blocking=False):
            self.send_json({"error": f"too many viewers (at most {view.max_viewers})"},
                           HTTPStatus.SERVICE_UNAVAILABLE)
            yield False
            return
        with view._lock:
            view.viewers += 1
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            yield True
        finally:
            with view._lock:
                view.viewers -= 1
            view._viewers.release()

    def stream(self):
        view = self.live_view
        with self._stream(f"multipart/x-mixed-replace; boundary={BOUNDARY}") as admitted:
            sent, last = 0, 0.0
            while admitted and not view.closed.is_set():
                if view.wait_newer(sent) <= sent:
                    continue
                wait = view.stream_interval - (time.monotonic() - last)
                if wait > 0:
                    time.sleep(wait)
                seq, data = view.jpeg()
                if not data or seq <= sent:
                    sent = max(sent, seq)
                    continue
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
                sent, last = seq, time.monotonic()

    def events(self):
        view = self.live_view
        with self._stream("text/event-stream") as admitted:
            sent = max(0, view.wait_newer(-1, timeout=0) - 1)  # start with the newest frame
            while admitted and not view.closed.is_set():
                if view.wait_newer(sent) <= sent:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    continue
                for seq, record in view.records_after(sent):
                    self.wfile.write(f"id: {seq}\ndata: ".encode() + json_line(record).rstrip(b"\n") + b"\n\n")
                    sent = seq
                self.wfile.flush()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>agegender live view</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1rem; background: #111; color: #eee; }
 main { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
 main > div:first-child { flex: 0 1 640px; } main > div:last-child { flex: 1 1 20rem; }
 img { width: 100%; background: #000; border: 1px solid #333; }
 h1 { font-size: 1.3rem; margin: 0 0 .6rem; }
 table { border-collapse: collapse; min-width: 22rem; }
 th, td { padding: .25rem .6rem; border-bottom: 1px solid #333; text-align: right; }
 th:first-child, td:first-child { text-align: left; }
 #stats { color: #9c9; font-variant-numeric: tabular-nums; margin: .5rem 0; }
 .female { color: #e6a; } .male { color: #6af; } .low { opacity: .55; }
</style></head>
<body>
<h1>agegender live view</h1>
<main>
 <div><img id="stream" alt="annotated camera stream"></div>
 <div>
  <div id="stats">waiting for frames...</div>
  <table><thead><tr><th>id</th><th>age</th><th>group</th><th>gender</th><th>p</th></tr></thead>
  <tbody id="faces"><tr><td colspan="5">no faces yet</td></tr></tbody></table>
 </div>
</main>
<script>
const suffix = {{SUFFIX}};
document.getElementById("stream").src = "stream.mjpg" + suffix;
function cell(text, cls) { const td = document.createElement("td"); td.textContent = text;
  if (cls) td.className = cls; return td; }
function showFaces(record) {
  const body = document.getElementById("faces"); body.replaceChildren();
  const faces = record.faces || [];
  if (!faces.length) { const tr = document.createElement("tr"); tr.append(cell("no faces")); body.append(tr); }
  for (const f of faces) {
    const tr = document.createElement("tr");
    if (f.quality && f.quality.low) tr.className = "low";
    tr.append(cell(f.id ?? "-"),
      cell(f.age == null ? "-" : `${Math.round(f.age)} \\u00b1 ${Math.round(f.age_std)}`),
      cell(f.age_group ?? "-"), cell(f.gender ?? "-", f.gender),
      cell(f.gender_prob == null ? "-" : f.gender_prob.toFixed(2)));
    body.append(tr);
  }
}
new EventSource("events" + suffix).onmessage = (e) => showFaces(JSON.parse(e.data));
async function pollStats() {
  try {
    const s = await (await fetch("stats" + suffix)).json();
    const stages = Object.entries(s.stage_ms || {}).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(" \\u00b7 ");
    document.getElementById("stats").textContent =
      `${s.fps == null ? "-" : s.fps.toFixed(1)} FPS \\u00b7 frame ${s.frames} \\u00b7 ms per frame: ${stages}`;
  } catch (err) { document.getElementById("stats").textContent = "connection lost"; }
}
setInterval(pollStats, 1000); pollStats();
</script>
</body></html>
"""
