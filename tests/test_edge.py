"""The edge runtime: sources, detection, alignment, tracking, outputs, CLI. No TensorFlow needed."""
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from agegender.edge import contract as C
from agegender.edge.errors import AgeGenderError
from edge_helpers import moving_face_frames, paste_face, write_video

REPO = Path(__file__).resolve().parents[1]
JSON_FACE_KEYS = {"id", "box", "score", "age", "age_std", "age_group", "gender", "gender_prob", "quality"}
QUALITY_KEYS = {"score", "yaw", "roll", "eye_distance", "pose", "low"}


@pytest.fixture(scope="module")
def face_crop(utkface_dir):
    return utkface_dir / "26_1_0_20170103175557343.jpg.chip.jpg"


@pytest.fixture(scope="module")
def estimator(yunet_model):
    from agegender.edge.estimator import Estimator

    return Estimator(detector=str(yunet_model), threads=1)


# --- the input contract and alignment -------------------------------------------------

def test_template_landmarks_map_onto_themselves():
    contract = C.InputContract(size=64)
    points = np.array(contract.template) * contract.canonical_size
    matrix = C.landmark_transform(points, contract)
    assert np.allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-3)


def test_aligned_crop_from_a_frame_matches_the_original(face_crop, yunet_model):
    """A UTKFace crop pasted into a frame (moved, scaled, rotated) comes back nearly as it was."""
    from agegender.edge.detectors import YuNetDetector
    from agegender.edge.images import read_canonical

    crop = read_canonical(str(face_crop))
    detector = YuNetDetector(str(yunet_model))
    contract = C.InputContract(size=128)
    reference = C.crop_to_input(crop, 128).astype(float)
    for center, scale, angle in (((320, 240), 1.0, 0), ((150, 300), 1.6, 8), ((500, 150), 0.8, -10)):
        frame, _ = paste_face(crop, center=center, scale=scale, angle=angle)
        faces = detector.detect(frame)
        assert len(faces) == 1
        aligned = C.face_input(frame, contract, landmarks=faces[0].landmarks).astype(float)
        # compare the central part (the pasted crop has no context beyond its border)
        diff = np.abs(aligned[24:104, 24:104] - reference[24:104, 24:104]).mean()
        assert diff < 20, (center, scale, angle, diff)


def test_box_crop_at_the_border_is_padded():
    image = np.full((100, 100, 3), 200, np.uint8)
    out = C.face_input(image, C.InputContract(size=32), box=(-30, -30, 60, 60))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


# --- sources -----------------------------------------------------------------------

def test_each_source_type(tmp_path, face_crop, photos_dir):
    from agegender.edge.sources import ImageFiles, SourceError, VideoCapture, open_source

    frames = moving_face_frames(face_crop, n=5)
    write_video(tmp_path / "clip.avi", frames)
    video = open_source(str(tmp_path / "clip.avi"))
    assert isinstance(video, VideoCapture) and not video.live
    got = list(video)
    assert len(got) == 5 and got[0].image.shape == (480, 640, 3)
    image = open_source(str(photos_dir / "astronaut.png"))
    assert isinstance(image, ImageFiles) and len(list(image)) == 1
    folder = open_source(str(photos_dir))
    assert len(folder.paths) == 11
    pattern = open_source(str(photos_dir / "*.png"))
    assert all(p.endswith(".png") for p in pattern.paths) and len(pattern.paths) == 3
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(str(tmp_path / "nothing-here.mp4"))
    with pytest.raises(SourceError, match="no pictures"):
        open_source(str(tmp_path / "empty_dir_that_exists") if (tmp_path / "empty_dir_that_exists").mkdir() is None else "")


class FakeCapture:
    """A cv2.VideoCapture stand-in: yields frames, can fail for a while, counts opens."""

    def __init__(self, script):
        self.script = script  # list of "frame" / "drop" items, consumed across reopenings

    def __call__(self, target):
        return self

    def isOpened(self):
        return True

    def read(self):
        if not self.script:
            return False, None
        item = self.script.pop(0)
        return (True, np.zeros((48, 64, 3), np.uint8)) if item == "frame" else (False, None)

    def release(self):
        pass

    def get(self, prop):
        return 30.0


def test_camera_index_source_reconnects_then_gives_up():
    from agegender.edge.sources import SourceError, VideoCapture

    fake = FakeCapture(["frame", "frame", "drop", "frame"])
    cam = VideoCapture(0, "camera 0", live=True, reconnect_seconds=0.3, capture_factory=fake,
                       sleep=lambda s: time.sleep(0.01))
    frames = []
    with pytest.raises(SourceError, match="giving up"):
        for frame in cam:
            frames.append(frame)
    assert len(frames) == 3 and cam.reconnects >= 1


# --- tracking -------------------------------------------------------------------------

def test_tracker_ids_stable_for_a_moving_face_and_smoothing_reduces_variance():
    from agegender.edge.tracker import IoUTracker

    rng = np.random.default_rng(0)
    tracker = IoUTracker(smoothing=0.3)
    raw, smoothed, ids = [], [], []
    for i in range(60):
        boxes = [(100 + 3 * i, 80, 60, 60), (400, 200 + 2 * i, 50, 50)]
        ages = 30 + rng.normal(0, 4, size=2)
        tracks = tracker.update(boxes, ages, [5, 5], [0.9, 0.1])
        ids.append([t.id for t in tracks])
        raw.append(ages[0])
        smoothed.append(tracks[0].age)
    assert all(i == ids[0] for i in ids) and ids[0][0] != ids[0][1]
    assert np.var(np.diff(smoothed)) < 0.3 * np.var(np.diff(raw))
    # faces that leave are dropped after max_missed frames: no growth in tracker state
    for _ in range(tracker.max_missed + 1):
        tracker.update([], [], [], [])
    assert len(tracker) == 0
    assert tracker.update([(0, 0, 10, 10)], [20], [3], [0.5])[0].id == 3


# --- detection ------------------------------------------------------------------------

def test_yunet_finds_the_faces_in_the_photos(photos_dir, yunet_model):
    import csv

    from agegender.edge.detectors import YuNetDetector
    from agegender.edge.images import read_image

    detector = YuNetDetector(str(yunet_model))
    expected = {row["file"]: int(row["faces"]) for row in csv.DictReader(open(photos_dir / "faces.csv"))}
    found = {name: len(detector.detect(read_image(str(photos_dir / name)))) for name in expected}
    assert sum(min(found[n], expected[n]) for n in expected) >= 19  # faces found
    assert all(found[n] <= expected[n] for n in expected), found  # no false faces


def test_haar_fallback_when_no_yunet(tmp_path, monkeypatch, caplog, photos_dir):
    from agegender.edge.detectors import HaarDetector, create_detector
    from agegender.edge.images import read_image

    monkeypatch.delenv("AGEGENDER_DETECTOR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        detector = create_detector(None)
    assert isinstance(detector, HaarDetector)
    assert "agegender models fetch" in caplog.text
    faces = detector.detect(read_image(str(photos_dir / "astronaut.png")))
    assert len(faces) >= 1 and faces[0].landmarks is None


# --- models fetch against a local server --------------------------------------------------

@pytest.fixture
def local_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_models_fetch_checks_sha256(local_server, tmp_path):
    import hashlib

    from agegender.edge import zoo

    root, base = local_server
    payload = os.urandom(5000)
    (root / "good.onnx").write_bytes(payload)
    (root / "bad.onnx").write_bytes(payload[:-1] + b"x")
    sha = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "cache"
    path = zoo.fetch(url=f"{base}/good.onnx", sha256=sha, dest_dir=str(dest), name="yunet.onnx")
    assert Path(path).read_bytes() == payload
    os.unlink(path)
    with pytest.raises(AgeGenderError, match="checksum mismatch"):
        zoo.fetch(url=f"{base}/bad.onnx", sha256=sha, dest_dir=str(dest), name="yunet.onnx")
    assert list(dest.iterdir()) == []  # nothing installed, no partial file left
    with pytest.raises(AgeGenderError, match="cannot download"):
        zoo.fetch(url=f"{base}/missing.onnx", sha256=sha, dest_dir=str(dest), name="yunet.onnx")


# --- the Estimator and the commands -------------------------------------------------------

def test_estimator_on_photos_and_aligned_crops(estimator, photos_dir, face_crop):
    from agegender.edge.images import read_canonical, read_image

    faces = estimator.predict(read_image(str(photos_dir / "astronaut.png")))
    assert len(faces) == 1
    face = faces[0]
    assert 0 <= face.age <= 100 and face.age_std > 0 and face.age_group in estimator.contract.age_groups.names
    assert face.gender in ("male", "female") and 0.5 <= face.gender_prob <= 1
    crop_faces = estimator.predict(read_canonical(str(face_crop)), aligned=True)
    assert len(crop_faces) == 1 and crop_faces[0].box == (0, 0, 200, 200)


def test_run_on_a_video_writes_json_lines_and_video(tmp_path, face_crop, yunet_model):
    from agegender.edge.cli import main

    write_video(tmp_path / "clip.avi", moving_face_frames(face_crop, n=8))
    code = main(["run", "--source", str(tmp_path / "clip.avi"), "--detector-model", str(yunet_model),
                 "--json", str(tmp_path / "out.jsonl"), "--output", str(tmp_path / "out.avi"), "--threads", "1"])
    assert code == 0
    lines = [json.loads(l) for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [l["frame"] for l in lines] == list(range(8))
    for line in lines:
        assert set(line) >= {"source", "frame", "faces"}
        assert len(line["faces"]) == 1
        face = line["faces"][0]
        assert set(face) == JSON_FACE_KEYS and set(face["quality"]) == QUALITY_KEYS
        assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
        assert face["gender"] in ("male", "female") and face["age_group"]
    assert len({l["faces"][0]["id"] for l in lines}) == 1  # one face, one id
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8


def test_predict_folder_reports_bad_files_and_continues(tmp_path, photos_dir, yunet_model, capsys):
    from agegender.edge.cli import main

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "astronaut.png").write_bytes((photos_dir / "astronaut.png").read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    assert main(["predict", str(folder), "--json", "--detector-model", str(yunet_model)]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    by_name = {os.path.basename(l["source"]): l for l in lines}
    assert "error" in by_name["broken.jpg"] and by_name["broken.jpg"]["faces"] == []
    assert len(by_name["astronaut.png"]["faces"]) == 1
    assert main(["predict", str(folder), "--strict", "--detector-model", str(yunet_model)]) == 1


def test_models_list_shows_the_shipped_default(capsys):
    from agegender.edge.cli import main

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "(default)" in out and "sha256" in out


BLOCK_TF = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx'):
            raise ImportError('blocked for the test: ' + name)
sys.meta_path.insert(0, Block())
from agegender.edge.cli import main
code = main(sys.argv[1:])
assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules), 'TensorFlow was imported'
print('EXIT', code)
"""


@pytest.mark.parametrize("model", ["default", "onnx"])
def test_edge_commands_never_import_tensorflow(photos_dir, yunet_model, model):
    from agegender.edge.zoo import shipped_models_dir

    args = ["predict", str(photos_dir / "astronaut.png"), "--json", "--detector-model", str(yunet_model)]
    if model == "onnx":
        onnx = sorted(p for p in os.listdir(shipped_models_dir()) if p.endswith(".onnx"))
        assert onnx, "no ONNX model shipped"
        args += ["--model", os.path.join(shipped_models_dir(), onnx[0])]
    out = subprocess.run([sys.executable, "-c", BLOCK_TF, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "EXIT 0" in out.stdout
    face = json.loads(out.stdout.splitlines()[0])["faces"][0]
    assert set(face) == JSON_FACE_KEYS and set(face["quality"]) == QUALITY_KEYS
    assert face["quality"]["pose"] == "frontal" and not face["quality"]["low"]
