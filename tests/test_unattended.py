"""Unattended for months (issue 16): no input stops the loop, memory stays bounded, threads are safe.

The bad inputs are built here: tiny headers that declare huge pictures, literal glob characters,
file names that are not UTF-8, one Estimator shared by threads."""
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "edge" / "samples" / "astronaut.png"
# The child's own peak memory: VmHWM starts afresh at exec (getrusage's ru_maxrss would carry over the
# forked parent's, which is large once the test process has loaded TensorFlow).
PEAK_RSS = """
def PEAK_RSS_MB():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
"""


def tiny_tiff(width: int, height: int) -> bytes:
    """A 200-byte TIFF whose header declares width x height 8-bit grey pixels."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 200), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, width * height)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    data = b"II*\0" + struct.pack("<I", 8) + ifd
    return data + b"\0" * (200 - len(data))


def os2_bmp(width: int, height: int) -> bytes:
    """A 90-byte OS/2 bitmap (12-byte core header: 16-bit width and height)."""
    header = b"BM" + struct.pack("<IHHI", 90, 0, 0, 26) + struct.pack("<IHHHH", 12, width, height, 1, 24)
    return header + b"\0" * (90 - len(header))


def lossless_webp(width: int, height: int) -> bytes:
    """A 38-byte lossless WebP declaring width x height."""
    bits = (width - 1) | ((height - 1) << 14)
    payload = b"\x2f" + struct.pack("<I", bits) + b"\0" * 13
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b",\0\0\0\0" + \
        struct.pack("<HH", width, height) + b"\0\x02\x02\x44\x01\0;"


def padded_jpeg(width: int, height: int) -> bytes:
    """A JPEG whose SOF (declaring width x height) comes after 70 KB of APP padding."""
    app = b"".join(b"\xff\xe1" + struct.pack(">H", 65000) + b"\0" * 64998 for _ in range(2))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app + sof + b"\xff\xd9"


BOMBS = {"tiny.tif": tiny_tiff(40000, 40000), "os2.bmp": os2_bmp(40000, 40000),
         "small.webp": lossless_webp(16000, 16000), "gif_named.png": gif(65000, 65000),
         "padded.jpg": padded_jpeg(60000, 60000)}


def test_pictures_that_declare_huge_sizes_are_refused_from_their_header(tmp_path):
    code = PEAK_RSS + """
import sys
from agegender.edge.images import ImageError, read_image
for path in sys.argv[1:]:
    try:
        read_image(path)
        print("READ", path)
    except ImageError as exc:
        print("REFUSED", exc)
print("RSS_MB", PEAK_RSS_MB())
"""
    paths = []
    for name, data in BOMBS.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    proc = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("REFUSED") for line in lines) == len(BOMBS), proc.stdout
    peak = float(lines[-1].split()[1])
    print(f"decompression bombs: {len(BOMBS)} refused, peak RSS {peak:.0f} MB")  # -s shows it
    assert peak < 400, lines[-1]  # nothing near the gigabytes those headers ask for


def test_a_folder_with_bad_pictures_still_scores_the_good_ones(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name, data in BOMBS.items():
        (folder / name).write_bytes(data)
    shutil.copy(SAMPLE, folder / "zz_good.png")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "AGEGENDER_DETECTOR": ""}
    proc = subprocess.run([sys.executable, "-m", "agegender.edge.cli", "predict", str(folder), "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == len(BOMBS) + 1
    good = [r for r in records if r["source"].endswith("zz_good.png")]
    assert len(good) == 1 and len(good[0]["faces"]) == 1 and "error" not in good[0]
    assert sum("error" in r for r in records) == len(BOMBS)


def test_an_existing_path_with_glob_characters_is_taken_literally(tmp_path):
    from agegender.edge.sources import open_source

    shutil.copy(SAMPLE, tmp_path / "x[1].png")
    shutil.copy(SAMPLE, tmp_path / "x1.png")
    source = open_source(str(tmp_path / "x[1].png"))
    assert source.paths == [str(tmp_path / "x[1].png")]


def test_an_unreadable_folder_is_one_line(tmp_path, monkeypatch):
    from agegender.edge import sources
    from agegender.edge.sources import SourceError, open_source

    locked = tmp_path / "locked"
    locked.mkdir()

    def denied(folder):
        raise PermissionError(13, "Permission denied", folder)
    with monkeypatch.context() as m:  # what a user without the right sees, whoever runs the test
        m.setattr(sources, "list_images", denied)
        with pytest.raises(SourceError, match="locked: cannot read this folder \\(Permission denied\\)"):
            open_source(str(locked))
    if os.geteuid() == 0:  # root reads every folder: check the message through a user who cannot
        locked.chmod(0o700)
        code = ("import os; os.setgid(65534); os.setuid(65534)\n"
                "from agegender.edge.sources import SourceError, open_source\n"
                f"try: open_source({str(locked)!r})\n"
                "except SourceError as exc: print('ONE LINE:', exc)")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
        if "ModuleNotFoundError" in proc.stderr or "PermissionError: [Errno 13] Permission denied: '/" in proc.stderr:
            return  # the Python install itself is not readable by that user here: the check above stands
        assert "ONE LINE:" in proc.stdout and "cannot read this folder" in proc.stdout, proc.stderr[-1500:]
    else:
        locked.chmod(0)
        with pytest.raises(SourceError, match="cannot read this folder"):
            open_source(str(locked))


def test_json_lines_are_valid_utf8_json_for_any_file_name(tmp_path):
    from agegender.edge.outputs import json_line

    line = json_line({"source": os.fsdecode(b"caf\xe9.png"), "age": float("nan"), "faces": [{"x": float("inf")}]})
    parsed = json.loads(line.decode("utf-8"))
    assert parsed["source"] == "caf\ufffd.png" and parsed["age"] is None and parsed["faces"][0]["x"] is None
    weird = tmp_path / os.fsdecode(b"caf\xe9.png")
    shutil.copy(SAMPLE, weird)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "ascii", "XDG_CACHE_HOME": str(tmp_path),
           "AGEGENDER_DETECTOR": ""}
    proc = subprocess.run([sys.executable, "-m", "agegender.edge.cli", "predict", str(tmp_path), "--json"],
                          capture_output=True, timeout=120, env=env)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr[-1500:]
    record = json.loads(proc.stdout.decode("utf-8").splitlines()[0])
    assert record["source"].endswith("caf\ufffd.png") and len(record["faces"]) == 1


def test_one_estimator_shared_by_threads_gives_each_the_right_answer(yunet_model):
    from agegender.edge.estimator import Estimator

    estimator = Estimator(detector=str(yunet_model), threads=1)
    image = cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)
    pictures = [image, np.ascontiguousarray(image[::-1]), cv2.resize(image, (256, 256)),
                np.ascontiguousarray(image[:, ::-1])]
    expected = [[(f.box, round(f.age, 4)) for f in estimator.predict(p)] for p in pictures]
    results, errors = {}, []

    def work(k):
        try:
            for i in range(6):
                p = (k + i) % len(pictures)
                results.setdefault(k, []).append((p, [(f.box, round(f.age, 4)) for f in estimator.predict(pictures[p])]))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 4
    for runs in results.values():
        for p, got in runs:
            assert got == expected[p]


def cli(*args, env_extra=None, timeout=120, shell_pipe=None, tmp=None):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp or "/nonexistent"), "AGEGENDER_DETECTOR": "", **(env_extra or {})}
    cmd = [sys.executable, "-m", "agegender.edge.cli", *map(str, args)]
    if shell_pipe:
        cmd = " ".join(f"'{c}'" for c in cmd) + " | " + shell_pipe
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_outputs_fail_loudly_and_never_destroy_the_input(tmp_path):
    pics = tmp_path / "pics"
    for sub in ("a", "b"):
        (pics / sub).mkdir(parents=True)
        shutil.copy(SAMPLE, pics / sub / "same.png")
    for i in range(6):
        shutil.copy(SAMPLE, pics / f"p{i}.png")
    # piping into head: the reader leaves early; no traceback
    proc = cli("predict", pics, "--json", shell_pipe="head -n 1", tmp=tmp_path)
    assert proc.stdout.count("\n") == 1 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    # --json naming a folder, or a place that cannot be written
    for target, needle in ((tmp_path, "is a folder"), ("/proc/agegender.jsonl", "cannot write here"),
                           ("/dev/full", "writing failed (No space left on device)")):  # a full disk
        proc = cli("run", "--source", SAMPLE, "--json", target, tmp=tmp_path)
        assert proc.returncode == 1 and needle in proc.stderr and "Traceback" not in proc.stderr
    # an annotated folder or video that cannot be written is an error, not a silent exit 0
    for target in ("/proc/annotated", "/proc/annotated.avi"):
        proc = cli("run", "--source", SAMPLE, "--output", target, tmp=tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    # pictures with the same name from different folders both survive
    proc = cli("run", "--source", f"{pics}/*/same.png", "--output", tmp_path / "annotated", tmp=tmp_path)
    assert proc.returncode == 0 and sorted(os.listdir(tmp_path / "annotated")) == ["same.jpg", "same_2.jpg"]
    # --output or --json equal to the source is refused, the source untouched
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 64))
    for _ in range(3):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    before = video.read_bytes()
    for flag in ("--output", "--json"):
        proc = cli("run", "--source", video, flag, video, tmp=tmp_path)
        assert proc.returncode == 1 and "is the source itself" in proc.stderr
    assert video.read_bytes() == before


def test_two_runs_logging_to_one_file_lose_no_line(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(15):
        shutil.copy(SAMPLE, folder / f"p{i}.png")
    out = tmp_path / "both.jsonl"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "AGEGENDER_DETECTOR": ""}
    procs = [subprocess.Popen([sys.executable, "-m", "agegender.edge.cli", "run", "--source", str(folder),
                               "--json", str(out)], stderr=subprocess.DEVNULL, env=env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lines = out.read_text().splitlines()
    assert len(lines) == 30 and all(json.loads(line)["faces"] for line in lines)


@pytest.fixture()
def local_server(yunet_model):
    """A loopback HTTP server: /good (YuNet), /big (11 MiB), /slow (a byte every 0.3 s)."""
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    good = Path(yunet_model).read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            if self.path == "/big":
                self.end_headers()  # no Content-Length: the size cap must count
                for _ in range(11 * 16):
                    self.wfile.write(b"\0" * 65536)
            elif self.path == "/slow":
                self.end_headers()
                for _ in range(40):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.3)
            else:
                self.send_header("Content-Length", str(len(good)))
                self.end_headers()
                self.wfile.write(good)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_models_fetch_is_bounded_in_time_and_size_and_checks_the_cache(tmp_path, local_server):
    from agegender.edge import zoo
    from agegender.edge.detectors import find_yunet
    from agegender.edge.errors import AgeGenderError

    dest = tmp_path / "agegender"
    (dest).mkdir()
    (dest / ".partial-left-by-a-killed-fetch").write_bytes(b"x" * 100)
    with pytest.raises(AgeGenderError, match="far too large"):
        zoo.fetch(url=local_server + "/big", dest_dir=str(dest))
    with pytest.raises(AgeGenderError, match="took more than 2 s"):
        zoo.fetch(url=local_server + "/slow", dest_dir=str(dest), timeout=2)
    with pytest.raises(AgeGenderError, match="not an http"):
        zoo.fetch(url="not a url", dest_dir=str(dest))
    assert os.listdir(dest) == []  # no partial file, the stale one removed
    path = zoo.fetch(url=local_server + "/good", dest_dir=str(dest))
    assert os.path.basename(path) == "face_detection_yunet_2023mar.onnx"
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path)
    os.environ.pop("AGEGENDER_DETECTOR", None)
    try:
        assert find_yunet() == path
        with open(path, "r+b") as f:  # the cached file goes bad on the SD card
            f.seek(1000)
            f.write(b"\xff\xff")
        with pytest.raises(AgeGenderError, match="cached YuNet file is corrupt"):
            find_yunet()
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME")
        else:
            os.environ["XDG_CACHE_HOME"] = old
    proc = cli("models", "fetch", "--url", "not a url", tmp=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "not an http" in proc.stderr


def jpeg_with_orientation(upright_bgr: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose pixels are stored turned, with the EXIF orientation that sets them upright."""
    inverse = {1: lambda x: x, 2: lambda x: cv2.flip(x, 1), 3: lambda x: cv2.rotate(x, cv2.ROTATE_180),
               4: lambda x: cv2.flip(x, 0), 5: cv2.transpose,
               6: lambda x: cv2.rotate(x, cv2.ROTATE_90_COUNTERCLOCKWISE),
               7: lambda x: cv2.rotate(cv2.transpose(x), cv2.ROTATE_180),
               8: lambda x: cv2.rotate(x, cv2.ROTATE_90_CLOCKWISE)}[orientation]
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(inverse(upright_bgr)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1,
                                                                               orientation, 0) + b"\0\0\0\0"
    app1 = b"Exif\0\0" + tiff
    return data[:2].tobytes() + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:].tobytes()


def test_phone_photos_are_turned_upright_by_their_exif_orientation(tmp_path, yunet_model, photos_dir):
    from agegender.edge.estimator import Estimator
    from agegender.edge.images import read_image_oriented

    upright = cv2.imread(str(photos_dir / "obama.jpg"))
    estimator = Estimator(detector=str(yunet_model))
    reference = None
    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.jpg"
        path.write_bytes(jpeg_with_orientation(upright, orientation))
        image, applied = read_image_oriented(str(path))
        assert applied == orientation and image.shape[:2] == upright.shape[:2]
        faces = estimator.predict(image)
        assert len(faces) == 1, orientation
        reference = reference or faces[0]
        assert abs(faces[0].box[0] - reference.box[0]) <= 3 and abs(faces[0].box[1] - reference.box[1]) <= 3
        # each orientation is a new JPEG of rotated pixels (and the box moves by a pixel): the shipped model's
        # age moves by up to 1.8 y on this face; a face left sideways would not be found, or not here
        assert abs(faces[0].age - reference.age) < 2.5 and faces[0].gender == reference.gender
    proc = cli("predict", tmp_path / "o6.jpg", "--json", tmp=tmp_path)
    assert json.loads(proc.stdout)["exif_orientation"] == 6 and json.loads(proc.stdout)["faces"]


FUZZ_RSS_LIMIT_MB = 600


def mutate_bytes(data: bytes, rng) -> bytes:
    kind = rng.integers(5)
    buf = bytearray(data)
    if kind == 0:  # flip bytes anywhere
        for i in rng.integers(0, len(buf), size=int(rng.integers(1, 50))):
            buf[i] ^= int(rng.integers(1, 256))
    elif kind == 1:  # corrupt the header
        for i in rng.integers(0, min(64, len(buf)), size=int(rng.integers(1, 8))):
            buf[i] = int(rng.integers(0, 256))
    elif kind == 2:  # truncate
        buf = buf[: int(rng.integers(1, len(buf)))]
    elif kind == 3:  # random junk with the right magic number
        buf = buf[:8] + bytearray(rng.integers(0, 256, size=int(rng.integers(1, 5000)), dtype=np.uint8).tobytes())
    else:  # a huge declared size in a PNG header
        buf[16:24] = struct.pack(">II", int(rng.integers(10000, 2 ** 31)), int(rng.integers(10000, 2 ** 31)))
    return bytes(buf)


def test_fuzz_pictures_cards_and_models(tmp_path, yunet_model):
    """Seeded, bounded to about a minute: mutated pictures in one batch with good ones, mutated
    cards and bit-flipped models. No traceback, no crash, one line per bad input, every good input
    scored, memory bounded."""
    from agegender.edge.card import ModelCard
    from agegender.edge.errors import AgeGenderError
    from agegender.edge.model import AgeGenderModel
    from agegender.edge.zoo import default_model_path

    rng = np.random.default_rng(2026)
    folder = tmp_path / "batch"
    folder.mkdir()
    png = SAMPLE.read_bytes()
    ok, jpg = cv2.imencode(".jpg", cv2.imread(str(SAMPLE)))
    for i in range(40):
        (folder / f"bad{i:02d}.{'png' if i % 2 else 'jpg'}").write_bytes(mutate_bytes(png if i % 2 else jpg.tobytes(), rng))
    for i in range(3):
        shutil.copy(SAMPLE, folder / f"good{i}.png")
    code = (PEAK_RSS + "import sys\nfrom agegender.edge.cli import main\nrc = main(sys.argv[1:])\n"
            "print('RSS_MB', PEAK_RSS_MB(), file=sys.stderr)\nsys.exit(rc)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "AGEGENDER_DETECTOR": str(yunet_model)}
    proc = subprocess.run([sys.executable, "-c", code, "predict", str(folder), "--json"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 43  # one line per picture, bad or good
    good = [r for r in records if os.path.basename(r["source"]).startswith("good")]
    assert len(good) == 3 and all(len(r["faces"]) == 1 and "error" not in r for r in good)
    assert all(("error" in r) or r["faces"] is not None for r in records)
    rss = float(proc.stderr.rsplit("RSS_MB", 1)[1].split()[0])
    print(f"fuzz batch: {len(records)} pictures, {sum('error' in r for r in records)} refused, "
          f"peak RSS {rss:.0f} MB")  # -s shows it
    assert rss < FUZZ_RSS_LIMIT_MB, rss

    # cards: fields replaced by garbage of every type; each either loads or is one clear error
    base = json.loads(open(default_model_path() + ".json").read())
    garbage = [None, "x", -1, 0, 1e308, float("inf"), [], {}, [[[[1]]]], True, "RGB", 40000, {"a": []}]
    for i in range(60):
        card = json.loads(json.dumps(base))
        target = card if rng.random() < 0.5 else card["input"]
        key = list(target)[int(rng.integers(len(target)))]
        target[key] = garbage[int(rng.integers(len(garbage)))]
        try:
            ModelCard.from_dict(json.loads(json.dumps(card, allow_nan=True)), f"card{i}.json")
        except AgeGenderError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(f"card{i}.json: ")

    # models: bit-flipped copies of the shipped file beside its card are refused before LiteRT reads them
    data = Path(default_model_path()).read_bytes()
    for i in range(15):
        flipped = tmp_path / f"flip{i}.tflite"
        buf = bytearray(data)
        buf[int(rng.integers(len(buf)))] ^= 1 << int(rng.integers(8))
        flipped.write_bytes(bytes(buf))
        shutil.copy(default_model_path() + ".json", str(flipped) + ".json")
        with pytest.raises(AgeGenderError, match="sha256"):
            AgeGenderModel.open(str(flipped))


def test_a_picture_file_of_2_gib_is_refused_without_reading_it(tmp_path):
    from agegender.edge.images import ImageError, read_image

    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:  # sparse: no disk space used
        f.write(b"\xff\xd8\xff")
        f.truncate(2 * 2 ** 30)
    with pytest.raises(ImageError, match="file too large for a picture"):
        read_image(str(huge))
