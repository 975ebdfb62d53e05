"""Reliability (#7): bad input gets one clear error and nothing else is lost; faults are survived.

The soak test (>= 10,000 frames, RSS flat, tracker bounded) is marked slow:
    python -m pytest -m slow tests/test_reliability.py
"""
import io
import json
import os
import signal
import subprocess
import sys
import time
import zlib
import struct

import cv2
import numpy as np
import pytest

from agegender.edge.errors import AgeGenderError
from agegender.edge.images import ImageError, read_image

AGEGENDER = [sys.executable, "-m", "agegender.edge.cli"]


@pytest.fixture(scope="module")
def face_crop(utkface_dir):
    from agegender.edge.images import read_canonical

    return read_canonical(str(utkface_dir / "26_1_0_20170103175557343.jpg.chip.jpg"))


# --- bad pictures ---------------------------------------------------------------------

def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny compressed row of data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def special_pictures(face_bgr: np.ndarray) -> dict[str, bytes]:
    """The awkward-but-valid and the plainly broken files users have."""
    from PIL import Image

    files = {}
    ok, jpg = cv2.imencode(".jpg", face_bgr)
    files["good.jpg"] = jpg.tobytes()
    bgra = cv2.cvtColor(face_bgr, cv2.COLOR_BGR2BGRA)
    bgra[:, :, 3] = np.linspace(0, 255, bgra.shape[1], dtype=np.uint8)[None, :]
    files["alpha.png"] = cv2.imencode(".png", bgra)[1].tobytes()
    files["grey.png"] = cv2.imencode(".png", cv2.cvtColor(face_bgr, cv2.COLOR_BGR2GRAY))[1].tobytes()
    files["sixteen_bit.png"] = cv2.imencode(".png", face_bgr.astype(np.uint16) * 257)[1].tobytes()
    cmyk = io.BytesIO()
    Image.fromarray(face_bgr[:, :, ::-1]).convert("CMYK").save(cmyk, format="JPEG")
    files["cmyk.jpg"] = cmyk.getvalue()
    files["tiny.png"] = cv2.imencode(".png", face_bgr[:1, :1])[1].tobytes()
    files["huge.png"] = _png_header_only(20000, 20000)
    files["empty.jpg"] = b""
    files["truncated.jpg"] = jpg.tobytes()[: len(jpg) // 3]
    files["text.jpg"] = b"this is not a picture\n" * 20
    files["html.png"] = b"<html><body>404 not found</body></html>"
    return files


def mutations(data: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    """n corrupted copies: truncated, bytes flipped, chunks deleted or duplicated, headers lost."""
    out = []
    for i in range(n):
        kind = i % 5
        b = bytearray(data)
        if kind == 0:
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 1:
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 40))):
                b[pos] = int(rng.integers(0, 256))
        elif kind == 2:
            start = int(rng.integers(0, len(b)))
            del b[start:start + int(rng.integers(1, 2000))]
        elif kind == 3:
            start = int(rng.integers(0, len(b)))
            b[start:start] = b[start:start + int(rng.integers(1, 2000))]
        else:
            b[: int(rng.integers(1, 32))] = rng.integers(0, 256, size=int(rng.integers(1, 32))).astype(np.uint8).tobytes()
        out.append(bytes(b))
    return out


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory, face_crop):
    folder = tmp_path_factory.mktemp("fuzz")
    face_bgr = cv2.cvtColor(face_crop, cv2.COLOR_RGB2BGR)
    for name, data in special_pictures(face_bgr).items():
        (folder / name).write_bytes(data)
    rng = np.random.default_rng(7)
    jpg = cv2.imencode(".jpg", face_bgr)[1].tobytes()
    png = cv2.imencode(".png", face_bgr)[1].tobytes()
    for i, data in enumerate(mutations(jpg, rng, 150) + mutations(png, rng, 150)):
        (folder / f"mutant_{i:03d}.{'jpg' if i < 150 else 'png'}").write_bytes(data)
    (folder / "a_folder.jpg").mkdir()  # a directory with a picture's name
    (folder / "notes.txt").write_text("not a picture, and not named like one")
    return folder


def test_fuzzed_pictures_give_rgb_or_one_clear_error(fuzz_folder):
    results = {"ok": 0, "error": 0}
    for path in sorted(fuzz_folder.iterdir()):
        try:
            image = read_image(str(path))
        except ImageError as exc:  # the one allowed failure, naming the file
            assert str(path) in str(exc) and "\n" not in str(exc)
            results["error"] += 1
            continue
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0
        results["ok"] += 1
    assert results["ok"] >= 10 and results["error"] >= 10, results
    print("fuzz:", results)
    assert read_image(str(fuzz_folder / "cmyk.jpg")).shape[2] == 3
    assert read_image(str(fuzz_folder / "sixteen_bit.png")).dtype == np.uint8
    with pytest.raises(ImageError, match="too large"):
        read_image(str(fuzz_folder / "huge.png"))
    with pytest.raises(ImageError, match="no such file"):
        read_image(str(fuzz_folder / "missing.jpg"))


def test_predict_on_the_fuzzed_folder_processes_everything(fuzz_folder, yunet_model):
    """Every picture gets one JSON line; the bad ones are marked; --strict turns errors into status 1."""
    cmd = AGEGENDER + ["predict", str(fuzz_folder), "--json", "--detector-model", str(yunet_model)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    pictures = [p for p in os.listdir(fuzz_folder) if p.lower().endswith((".jpg", ".png"))
                and os.path.isfile(fuzz_folder / p)]
    assert sorted(os.path.basename(r["source"]) for r in records) == sorted(pictures)
    failed = [r for r in records if "error" in r]
    assert failed and all(r["faces"] == [] for r in failed)
    assert len(failed) == proc.stderr.count("ERROR")
    good = {os.path.basename(r["source"]): r for r in records}
    for name in ("good.jpg", "alpha.png", "grey.png", "sixteen_bit.png", "cmyk.jpg"):
        assert "error" not in good[name] and len(good[name]["faces"]) == 1, name
    assert "error" not in good["tiny.png"] and good["tiny.png"]["faces"] == []
    strict = subprocess.run(cmd + ["--strict"], capture_output=True, text=True, timeout=300)
    assert strict.returncode == 1


def test_nothing_readable_is_status_1(tmp_path, yunet_model):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"garbage")
    proc = subprocess.run(AGEGENDER + ["predict", str(tmp_path), "--detector-model", str(yunet_model)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "a.jpg: empty file" in proc.stderr and "b.png: not a readable picture" in proc.stderr


def test_a_frame_that_breaks_the_pipeline_is_marked_and_the_loop_goes_on(tmp_path, face_crop):
    from agegender.edge.outputs import JsonLinesWriter
    from agegender.edge.runner import run_loop
    from agegender.edge.sources import Frame

    class Flaky:
        """An estimator whose second frame raises (say, a driver returned a broken buffer)."""
        timings = {}

        def predict(self, image, aligned=False):
            if image.shape[0] == 1:
                raise ValueError("broken buffer")
            return []

    class Camera(list):
        def close(self):
            pass

    frames = Camera([Frame(np.zeros((4, 4, 3), np.uint8), 0, "cam"), Frame(np.zeros((1, 4, 3), np.uint8), 1, "cam"),
                     Frame(np.zeros((4, 4, 3), np.uint8), 2, "cam")])
    stats = run_loop(Flaky(), frames, json_writer=JsonLinesWriter(str(tmp_path / "out.jsonl")))
    assert stats.frames == 3 and stats.errors == 1
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [("error" in r) for r in records] == [False, True, False]
    assert "ValueError: broken buffer" in records[1]["error"]


# --- bad models -------------------------------------------------------------------------

def _onnx_model(path, input_shape, outputs: dict):
    """A tiny ONNX graph: image -> GlobalAveragePool -> Flatten -> per output a MatMul to its width."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"])]
    inits, outs = [], []
    for name, width in outputs.items():
        inits.append(numpy_helper.from_array(np.zeros((input_shape[1], width), np.float32), f"w_{name}"))
        nodes.append(helper.make_node("MatMul", ["flat", f"w_{name}"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", width]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)],
                              outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_bad_models_get_one_line_naming_the_file_and_the_problem(tmp_path):
    pytest.importorskip("onnxruntime")
    from agegender.edge.backends import ModelError, open_model
    from agegender.edge.estimator import Estimator

    cases = {}
    cases["missing"] = (str(tmp_path / "nope.tflite"), "not found")
    (tmp_path / "corrupt.tflite").write_bytes(os.urandom(4096))
    cases["corrupt tflite"] = (str(tmp_path / "corrupt.tflite"), "not a readable TFLite model")
    (tmp_path / "corrupt.onnx").write_bytes(os.urandom(4096))
    cases["corrupt onnx"] = (str(tmp_path / "corrupt.onnx"), "not a readable ONNX model")
    (tmp_path / "short.onnx").write_bytes(b"\x08\x07")
    cases["truncated"] = (str(tmp_path / "short.onnx"), "empty or truncated")
    (tmp_path / "model.pt").write_bytes(os.urandom(4096))
    cases["unknown type"] = (str(tmp_path / "model.pt"), "unknown model type")
    # NCHW instead of NHWC: the wrong input shape
    cases["wrong input"] = (_onnx_model(tmp_path / "nchw.onnx", [1, 3, 128, 128], {"age": 101, "gender": 1}),
                            "is not (N, S, S, 3)")
    cases["not age/gender"] = (_onnx_model(tmp_path / "classes.onnx", [1, 128, 128, 3], {"logits": 1000}),
                               "not an age/gender model")
    cases["wrong width"] = (_onnx_model(tmp_path / "age10.onnx", [1, 128, 128, 3], {"age": 10, "gender": 1}),
                            "output 'age' has shape")
    for case, (path, needle) in cases.items():
        with pytest.raises(ModelError) as info:
            open_model(path)
        message = str(info.value)
        assert message.startswith(path) and needle in message and "\n" not in message, (case, message)

    # a sound model beside a card that belongs to another model
    other = _onnx_model(tmp_path / "size96.onnx", [1, 96, 96, 3], {"age": 101, "gender": 1})
    write_card_for(other)
    with pytest.raises(AgeGenderError, match="takes 96x96 px but its card says 128 px"):
        Estimator(model=other, detector=object())
    age_only = _onnx_model(tmp_path / "age_only.onnx", [1, 128, 128, 3], {"age": 101})
    write_card_for(age_only)
    with pytest.raises(AgeGenderError, match=r"has the outputs \['age'\] but its card lists \['age', 'gender'\]"):
        Estimator(model=age_only, detector=object())
    no_card = _onnx_model(tmp_path / "no_card.onnx", [1, 128, 128, 3], {"age": 101, "gender": 1})
    with pytest.raises(AgeGenderError, match="no model card beside it"):
        Estimator(model=no_card, detector=object())
    # and the CLI says it in one line, no traceback
    proc = subprocess.run(AGEGENDER + ["predict", str(tmp_path / "x.jpg"), "--model", str(tmp_path / "corrupt.onnx")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("agegender predict: " + str(tmp_path / "corrupt.onnx"))


def write_card_for(model_path: str, **changes) -> None:
    """The shipped model's card, beside another file (its sha256 left out, so the file is read)."""
    from agegender.edge.zoo import default_model_path

    card = json.loads(open(default_model_path() + ".json").read())
    card.update(sha256=None, format="onnx-fp32", **changes)
    card["input"]["dtype"] = "float32"
    with open(model_path + ".json", "w") as f:
        json.dump(card, f)


# --- a flaky camera ---------------------------------------------------------------------------

class FlakyCamera:
    """A fake cv2.VideoCapture: delivers frames, then fails for a while (unplugged), then recovers."""

    def __init__(self, schedule, frame):
        self.schedule, self.frame, self.opened = schedule, frame, True

    def isOpened(self):
        return self.opened

    def read(self):
        ok = self.schedule.pop(0) if self.schedule else False
        return ok, (self.frame.copy() if ok else None)

    def release(self):
        self.opened = False

    def get(self, prop):
        return 30.0


def test_camera_that_fails_then_recovers_keeps_the_loop_going(face_crop, yunet_model):
    from agegender.edge.estimator import Estimator
    from agegender.edge.runner import run_loop
    from agegender.edge.sources import VideoCapture

    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[140:340, 220:420] = cv2.cvtColor(face_crop, cv2.COLOR_RGB2BGR)
    opens = []

    def factory(target):
        # first connection: 5 frames then the cable is pulled; the next open fails; the third
        # connection delivers 5 more frames and the camera then goes away for good
        opens.append(time.monotonic())
        if len(opens) == 1:
            return FlakyCamera([True] * 5, frame)
        if len(opens) == 2:
            cam = FlakyCamera([], frame)
            cam.opened = False
            return cam
        if len(opens) == 3:
            return FlakyCamera([True] * 5, frame)
        cam = FlakyCamera([], frame)
        cam.opened = False
        return cam

    source = VideoCapture(0, "camera 0", live=True, reconnect_seconds=1.0, capture_factory=factory,
                          sleep=lambda s: time.sleep(0.02))
    estimator = Estimator(detector=str(yunet_model), threads=1)
    started = time.monotonic()
    stats = run_loop(estimator, source)
    assert stats.frames == 10 and stats.faces == 10 and stats.errors == 0
    assert stats.source_lost and stats.stopped_by == "source lost"  # -> `run` exits with status 1
    assert len(opens) >= 4  # it reconnected after the first failure, and kept trying after the second
    assert time.monotonic() - started < 30  # gave up after its reconnect window: it never hangs


# --- interrupted work ---------------------------------------------------------------------------

def _wait_for(predicate, timeout: float, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()[1][-2000:]}")
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_or_ctrl_c_during_run_leaves_valid_json_lines_and_video(tmp_path, face_crop, yunet_model, sig, code):
    from edge_helpers import paste_face, write_video

    frames = [paste_face(face_crop, center=(200 + (i % 40) * 6, 240))[0] for i in range(400)]
    write_video(tmp_path / "long.avi", frames)
    jsonl, video = tmp_path / "faces.jsonl", tmp_path / "annotated.avi"
    proc = subprocess.Popen(AGEGENDER + ["run", "--source", str(tmp_path / "long.avi"), "--json", str(jsonl),
                                         "--output", str(video), "--detector-model", str(yunet_model),
                                         "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: jsonl.exists() and jsonl.read_text().count("\n") >= 10, 120, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr
    lines = jsonl.read_text().splitlines()
    assert 10 <= len(lines) < 400  # stopped early ...
    records = [json.loads(line) for line in lines]  # ... and every line, the last included, parses
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert all(len(r["faces"]) == 1 for r in records)
    cap = cv2.VideoCapture(str(video))  # the video was closed properly: it opens and plays to the end
    written = 0
    while cap.read()[0]:
        written += 1
    assert written == len(records)


def test_a_run_killed_outright_leaves_playable_video(tmp_path, face_crop, yunet_model):
    """SIGKILL (power loss, the OOM killer): the video segments already finished still play."""
    from edge_helpers import paste_face, write_video

    frames = [paste_face(face_crop, center=(200 + (i % 40) * 6, 240))[0] for i in range(400)]
    write_video(tmp_path / "long.avi", frames)  # 10 fps: a 1-second segment is 10 frames
    jsonl, video = tmp_path / "faces.jsonl", tmp_path / "annotated.mp4"
    proc = subprocess.Popen(AGEGENDER + ["run", "--source", str(tmp_path / "long.avi"), "--json", str(jsonl),
                                         "--output", str(video), "--segment-seconds", "1",
                                         "--detector-model", str(yunet_model), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: jsonl.exists() and jsonl.read_text().count("\n") >= 45, 120, proc)
    proc.kill()
    proc.wait(timeout=30)
    from agegender.edge.outputs import segment_path

    segments = [segment_path(str(video), i) for i in range(len(list(tmp_path.glob("annotated*.mp4"))))]
    assert len(segments) >= 5 and all(os.path.isfile(p) for p in segments)
    readable = []
    for path in segments:
        cap = cv2.VideoCapture(str(path))
        n = 0
        while cap.read()[0]:
            n += 1
        readable.append(n)
    assert readable[:-1] == [10] * (len(readable) - 1), readable  # every finished segment plays, whole
    assert sum(readable) >= 40  # only the segment being written when it was killed is lost


def test_training_killed_mid_epoch_resumes_with_no_lost_epochs(utkface_sample, tmp_path):
    pytest.importorskip("tensorflow")
    out = tmp_path / "run"
    cmd = AGEGENDER + ["train", "--data", str(utkface_sample), "--arch", "cnn", "--width", "8", "--img-size", "32",
                       "--epochs", "3", "--batch-size", "8", "--workers", "1", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def epochs_done():
        try:
            return json.loads((out / "state.json").read_text())["epochs_done"]
        except (FileNotFoundError, ValueError, KeyError):
            return 0

    _wait_for(lambda: epochs_done() >= 1, 240, proc)
    time.sleep(0.5)  # into the next epoch
    proc.kill()  # SIGKILL: no chance to clean up
    proc.communicate()
    done = epochs_done()
    assert 1 <= done < 3
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {out} after epoch {done}" in resumed.stderr
    rows = (out / "history.csv").read_text().strip().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2", "3"]  # each epoch once: none lost, none repeated
    assert json.loads((out / "state.json").read_text())["epochs_done"] == 3
    assert (out / "model.keras").is_file() and not list(out.glob("*partial*"))


# --- a long run ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_soak_10k_frames_memory_flat_and_tracker_bounded(face_crop, yunet_model):
    """>= 10,000 frames with faces coming and going: RSS flat, tracker state bounded."""
    import resource

    from agegender.edge.estimator import Estimator
    from agegender.edge.runner import run_loop
    from agegender.edge.sources import Frame
    from agegender.edge.tracker import IoUTracker
    from edge_helpers import paste_face

    scenes = [np.full((480, 640, 3), 90, np.uint8)]  # nobody
    for n_faces in (1, 2, 3):
        frame = np.full((480, 640, 3), 90, np.uint8)
        for k in range(n_faces):
            face, _ = paste_face(face_crop, center=(120 + 200 * k, 240), scale=0.7)
            frame[:, 200 * k:200 * k + 240] = face[:, 200 * k:200 * k + 240]
        scenes.append(frame)

    class SyntheticCamera:
        sequential = True

        def __init__(self, n):
            self.n = n

        def __iter__(self):
            for i in range(self.n):  # a new set of faces every 50 frames, drifting a little
                scene = scenes[(i // 50) % len(scenes)]
                yield Frame(np.roll(scene, (i % 50) // 5, axis=1), i, "synthetic")

        def close(self):
            pass

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    estimator = Estimator(detector=str(yunet_model), threads=1)
    tracker = IoUTracker()
    samples, tracks = [], []

    def watch(frame, faces):
        if frame.index % 500 == 0:
            samples.append(rss_mb())
        tracks.append(len(tracker.tracks))

    stats = run_loop(estimator, SyntheticCamera(10_000), tracker=tracker, on_result=watch)
    assert stats.frames == 10_000 and stats.errors == 0
    warm = samples[2:]  # after the first 1,000 frames (caches, allocator pools)
    growth = max(warm) - warm[0]
    print(f"soak: {stats.frames} frames in {stats.seconds:.0f} s ({stats.fps:.0f} FPS), RSS {warm[0]:.0f} -> "
          f"{warm[-1]:.0f} MB (max growth {growth:.1f} MB), peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
          f"tracks at most {max(tracks)}, faces {stats.faces}")
    assert growth < 20
    assert max(tracks) <= 6  # 3 faces in view + 3 that just left: dropped after max_missed frames
    assert tracks[-1] <= 3
