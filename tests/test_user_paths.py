"""The runtime as a new user meets it: each rough edge found by trying it as one (issue 13).

CLI checks run the real command in a subprocess, as the user runs it."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "edge" / "samples" / "astronaut.png"

BLOCKING = """
import sys, importlib.abc
BLOCKED = set(sys.argv[1].split(','))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError('not installed (blocked for the test): ' + name)
sys.meta_path.insert(0, Block())
from agegender.edge.cli import main
sys.exit(main(sys.argv[2:]))
"""


def agegender(*args, env=None, block=("tensorflow", "keras"), timeout=300, cwd=None):
    """Run the CLI as a user would (without TensorFlow, like the edge install); (rc, stdout, stderr)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-c", BLOCKING, ",".join(block), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd or REPO)
    return proc.returncode, proc.stdout, proc.stderr


def no_traceback(err: str) -> bool:
    return "Traceback" not in err


@pytest.fixture()
def empty_cache(tmp_path):
    """A user cache with nothing in it (no YuNet): the Haar fallback."""
    return {"XDG_CACHE_HOME": str(tmp_path / "cache"), "AGEGENDER_DETECTOR": ""}


# --- 1-3: benchmark ---------------------------------------------------------------

def test_benchmark_on_the_base_install_times_what_it_can_and_says_what_it_skipped(empty_cache):
    rc, out, err = agegender("benchmark", "--runs", "5", "--warmup", "1", "--frames", "3",
                             block=("tensorflow", "keras", "onnxruntime"), env=empty_cache)
    assert rc == 0, err
    assert "skipped agegender_mnv2_128_int8.onnx: needs onnxruntime" in out
    assert "| agegender_mnv2_128_int8.tflite |" in out and no_traceback(err)


def test_benchmark_does_not_give_fps_for_faces_it_did_not_find(tmp_path, empty_cache):
    noise = tmp_path / "noise"
    noise.mkdir()
    for i in range(3):
        cv2.imwrite(str(noise / f"n{i}.png"), np.random.default_rng(i).integers(0, 255, (200, 200, 3), np.uint8))
    rc, out, err = agegender("benchmark", "--crops", noise, "--runs", "5", "--warmup", "1", "--frames", "3",
                             env=empty_cache)
    assert rc == 0, err
    rows = [line for line in out.splitlines() if line.startswith(("| 1 |", "| 2 |", "| 4 |"))]
    assert len(rows) == 6 and all("| - (faces not found) |" in row for row in rows)  # still path and video mode
    assert all("| 0.0 |" in row for row in rows)  # how many faces were found is shown


def test_benchmark_with_an_empty_crops_folder_is_one_clear_line(tmp_path):
    (tmp_path / "empty").mkdir()
    rc, out, err = agegender("benchmark", "--crops", tmp_path / "empty", "--runs", "2", "--warmup", "0")
    assert rc == 1 and no_traceback(err)
    assert "no pictures in this folder" in err


# --- 4, 11: sources that are not there --------------------------------------------------

def test_a_camera_that_does_not_exist_is_named_once():
    rc, out, err = agegender("run", "--source", "7", "--reconnect-seconds", "0.1")
    assert rc == 1 and no_traceback(err)
    assert "cannot open camera 7: no such camera" in err and "camera camera" not in err


def test_predict_on_a_missing_file_says_it_does_not_exist():
    rc, out, err = agegender("predict", "missing.jpg")
    assert rc == 1 and no_traceback(err)
    assert "missing.jpg: no such file or folder" in err and "unknown source" not in err


# --- 5: the README's API example after `models fetch` --------------------------------------

def test_a_bare_detector_name_is_found_where_models_fetch_puts_it(tmp_path, monkeypatch, yunet_model):
    from agegender.edge.detectors import YuNetDetector
    from agegender.edge.estimator import Estimator
    from agegender.edge.errors import AgeGenderError

    (tmp_path / "agegender").mkdir()
    shutil.copy(yunet_model, tmp_path / "agegender" / "face_detection_yunet_2023mar.onnx")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("AGEGENDER_DETECTOR", raising=False)
    monkeypatch.chdir(tmp_path)
    estimator = Estimator(detector="face_detection_yunet_2023mar.onnx")
    assert isinstance(estimator.detector, YuNetDetector)
    with pytest.raises(AgeGenderError, match="not found here nor in"):
        Estimator(detector="some_other_detector.onnx")


# --- 6: pictures of several sizes into one video ----------------------------------------------

def test_pictures_of_other_sizes_are_fitted_into_the_video_not_squashed(tmp_path, empty_cache):
    folder = tmp_path / "pics"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_square.png"), np.full((120, 120, 3), 200, np.uint8))
    cv2.imwrite(str(folder / "b_wide.png"), np.full((60, 240, 3), 200, np.uint8))  # 4:1
    rc, out, err = agegender("run", "--source", folder, "--output", tmp_path / "out.avi", env=empty_cache)
    assert rc == 0, err
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 2 and frames[1].shape[:2] == (120, 120)
    wide = frames[1].astype(int).mean(axis=(1, 2))
    assert wide[:30].max() < 40 and wide[-30:].max() < 40  # black bars above and below
    assert wide[50:70].min() > 150  # the picture itself, at its own aspect ratio


# --- 7: boxes and labels at the edges ------------------------------------------------------------

def test_boxes_stay_inside_the_picture_and_labels_never_overlap_or_leave_it():
    from agegender.edge.estimator import Estimator, clip_box
    from agegender.edge.outputs import label_rect

    assert clip_box((13.2, -2.4, 50, 40), 100, 100) == (13, 0, 50, 38)
    assert clip_box((80, 90, 50, 40), 100, 100) == (80, 90, 20, 10)
    image = cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)
    top = np.ascontiguousarray(image[60:, 100:])  # the face touches the top edge
    for face in Estimator(detector=None).predict(top):
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and x + w <= top.shape[1] and y + h <= top.shape[0]
    placed = []
    for box in ((0, 0, 40, 40), (40, 0, 40, 40), (560, 5, 80, 80)):  # top edge, side by side, right edge
        rect = label_rect(*box, 150, 16, 640, 480, placed)
        lx, ly, lw, lh = rect
        assert 0 <= lx and lx + lw <= 640 and 0 <= ly and ly + lh <= 480
        for other in placed:
            assert lx >= other[0] + other[2] or other[0] >= lx + lw or ly >= other[1] + other[3] \
                or other[1] >= ly + lh, (rect, other)
        placed.append(rect)


# --- 8: --max-images samples across ages --------------------------------------------------------

def test_max_images_is_a_seeded_sample_across_ages_not_the_first_names(utkface_sample):
    from agegender.train import data

    source = data.DataSource.parse(str(utkface_sample), split_dir=data.shipped_split_dir("utkface"))
    records, _ = data.read_source(source)
    first = sorted(records, key=lambda r: r.name)[:16]
    chosen = data.stratified_sample(records, 16, seed=0)
    assert chosen == data.stratified_sample(records, 16, seed=0)  # seeded
    bands = lambda recs: {min(r.age, 99) // 20 for r in recs}  # noqa: E731
    assert len(bands(chosen)) >= 4 > len(bands(first))


def test_evaluate_max_images_uses_the_sample(utkface_sample, tmp_path):
    rc, out, err = agegender("evaluate", REPO / "models" / "agegender_mnv2_128_int8.tflite", "--data",
                             utkface_sample, "--split", "all", "--max-images", "16", "--out", tmp_path / "r")
    assert rc == 0, err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["n_images"] == 16
    assert sum(1 for v in metrics["age_mae_by_band"].values() if v["n"]) >= 4


# --- 9: the Python API with the arrays people have -----------------------------------------------

def test_the_api_takes_grey_alpha_and_bgr_and_refuses_what_cannot_be_right(yunet_model):
    from agegender.edge.errors import PictureError
    from agegender.edge.estimator import Estimator

    estimator = Estimator(detector=str(yunet_model))
    bgr = cv2.imread(str(SAMPLE))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    reference = estimator.predict(rgb)
    assert len(reference) == 1
    from_bgr = estimator.predict(bgr, colour="BGR")
    assert from_bgr[0].age == pytest.approx(reference[0].age) and from_bgr[0].gender == reference[0].gender
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert estimator.predict(rgba)[0].age == pytest.approx(reference[0].age)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert len(estimator.predict(grey)) == 1 and len(estimator.predict(grey[:, :, None])) == 1
    for bad, message in ((np.zeros((0, 0, 3), np.uint8), "empty picture"),
                         (rgb.astype(np.float32) / 255, "8-bit"), (np.zeros((4, 4, 2), np.uint8), "shape"),
                         (None, "empty picture")):
        with pytest.raises(PictureError, match=message):
            estimator.predict(bad)
    with pytest.raises(ValueError, match="colour must be one of"):
        estimator.predict(rgb, colour="HSV")


# --- 10: starting from a model needs no ImageNet file ------------------------------------------------

def test_train_from_a_model_without_imagenet_weights(utkface_sample, tmp_path):
    pytest.importorskip("tensorflow")
    rc, out, err = agegender("train", "--data", utkface_sample, "--arch", "mobilenetv2", "--init-from",
                             REPO / "models" / "agegender_mnv2_128.keras", "--img-size", "128", "--head-epochs", "0",
                             "--epochs", "1", "--max-images", "8", "--batch-size", "8", "--workers", "1",
                             "--out", tmp_path / "run", block=(), timeout=600)
    assert rc == 0 and no_traceback(err), err[-2000:]
    assert (tmp_path / "run" / "model.keras").is_file()
    rc, out, err = agegender("train", "--data", utkface_sample, "--arch", "mobilenetv2", "--out", tmp_path / "r2",
                             block=())
    assert rc == 1 and no_traceback(err) and "needs --weights" in err and "--init-from" in err


# --- rough edges ------------------------------------------------------------------------------

def test_output_is_decided_by_its_extension(tmp_path, empty_cache):
    rc, out, err = agegender("predict", SAMPLE, "--output", tmp_path / "one.jpg", env=empty_cache)
    assert rc == 0 and (tmp_path / "one.jpg").is_file()
    assert cv2.imread(str(tmp_path / "one.jpg")).shape[:2] == (512, 512)
    rc, out, err = agegender("predict", SAMPLE, SAMPLE, "--output", tmp_path / "two.jpg", env=empty_cache)
    assert rc == 1 and "names one picture, but there are 2" in err and not (tmp_path / "two.jpg").exists()
    rc, out, err = agegender("predict", SAMPLE, "--output", tmp_path / "out.txt", env=empty_cache)
    assert rc == 1 and "unknown kind of output '.txt'" in err and not (tmp_path / "out.txt").exists()
    assert no_traceback(err)


def test_models_fetch_offline_suggests_what_to_do_and_leaves_no_cache_folder(tmp_path):
    cache = tmp_path / "cache"
    rc, out, err = agegender("models", "fetch", "--url", "http://127.0.0.1:9/face_detection_yunet_2023mar.onnx",
                             env={"XDG_CACHE_HOME": str(cache)})
    assert rc == 1 and no_traceback(err)
    assert "--detector-model" in err and "AGEGENDER_DETECTOR" in err and "--url" in err
    assert not (cache / "agegender").exists()


def test_models_list_says_which_detector_will_be_used(tmp_path, yunet_model, empty_cache):
    rc, out, err = agegender("models", "list", env=empty_cache)
    assert rc == 0 and "face detector in use: OpenCV's Haar cascade" in out
    rc, out, err = agegender("models", "list", "--detector-model", yunet_model, env=empty_cache)
    assert rc == 0 and f"face detector in use: YuNet, {yunet_model} (from --detector-model)" in out
    rc, out, err = agegender("models", "list", "--detector-model", tmp_path / "nope.onnx", env=empty_cache)
    assert rc == 1 and "nope.onnx" in err and "not found" in err and no_traceback(err)


def test_aligned_crops_need_no_detector_and_get_no_haar_warning(empty_cache):
    rc, out, err = agegender("predict", SAMPLE, "--aligned", env=empty_cache)
    assert rc == 0 and "Haar" not in err
    rc, out, err = agegender("predict", SAMPLE, env=empty_cache)
    assert "much worse" in err and "agegender models fetch" in err  # the fallback is named plainly


def test_quiet_anywhere_no_litert_banner_and_a_version(empty_cache):
    rc, out, err = agegender("predict", SAMPLE, "-q", env=empty_cache)
    assert rc == 0 and "XNNPACK" not in err and "INFO" not in err
    rc, out, err = agegender("--version")
    assert rc == 0 and out.startswith("agegender ")


def test_json_lines_carry_the_time(tmp_path, empty_cache):
    video = tmp_path / "v.avi"
    frame = cv2.imread(str(SAMPLE))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, frame.shape[1::-1])
    for _ in range(3):
        writer.write(frame)
    writer.release()
    rc, out, err = agegender("run", "--source", video, "--json", "-", env=empty_cache)
    lines = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and len(lines) == 3
    assert all(line["time"].endswith("Z") and line["time"][10] == "T" for line in lines)
    assert [line["stream_time"] for line in lines] == pytest.approx([0.0, 0.1, 0.2])
    rc, out, err = agegender("predict", SAMPLE, "--json", env=empty_cache)
    assert "time" in json.loads(out) and "stream_time" not in json.loads(out)


def test_summaries_read_as_english(empty_cache):
    rc, out, err = agegender("run", "--source", SAMPLE, env=empty_cache)
    assert rc == 0 and "1 frame, 1 face in" in err and "FPS" not in err.split("1 frame, 1 face")[1]
    assert "stopped at the end of the source" in err


def test_top_level_help_names_every_command():
    from agegender.edge import cli

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"run", "predict", "models", "benchmark", "train", "evaluate", "export", "bias"} <= set(commands)
    for name in commands:
        assert f"\n  {name} " in cli.DESCRIPTION, name


def test_a_failed_export_format_shows_no_nan():
    pytest.importorskip("tensorflow")
    from agegender.export.exporter import ExportResult
    from agegender.export.verify import FormatCheck

    check = FormatCheck("onnx-int8", "/nowhere/x.onnx", {}, float("nan"), False, "conversion failed")
    table = ExportResult({"age_mae": 4.7, "gender_accuracy": 0.94, "age_group_accuracy": 0.91}, [check],
                         "test", 0).table()
    assert "nan" not in table.lower() and "not written" in table and "FAIL: conversion failed" in table
