"""Training, evaluation and the CLI on a few real UTKFace crops (needs the [train] extras)."""
import json
import os

import numpy as np
import pytest

from conftest import needs_tf

pytestmark = needs_tf


def _config(sample, out, **kw):
    from agegender.train.trainer import TrainConfig

    base = dict(data=str(sample), out=str(out), arch="cnn", img_size=48, epochs=1, batch_size=16,
                workers=1, command="pytest")
    base.update(kw)
    return TrainConfig(**base)


def test_one_epoch_smoke_run_writes_everything_and_resumes(utkface_sample, tmp_path):
    from agegender.train.trainer import train

    state = train(_config(utkface_sample, tmp_path / "run"))
    assert state["finished"] and state["epochs_done"] == 1
    for name in ("model.keras", "model.json", "best.keras", "checkpoint.keras", "history.csv", "curves.png"):
        assert (tmp_path / "run" / name).is_file(), name
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["input"]["size"] == 48 and list(card["outputs"]) == ["age", "gender"] and card["alignment"] == "crop"
    assert 0 < card["validation"]["val_age_mae"] < 100
    assert not list((tmp_path / "run").glob("*partial*"))
    # a second run into the same folder without --resume is refused
    with pytest.raises(FileExistsError):
        train(_config(utkface_sample, tmp_path / "run"))
    # --resume with more epochs continues after epoch 1 instead of starting over
    state = train(_config(utkface_sample, tmp_path / "run", epochs=2), resume=True)
    assert state["epochs_done"] == 2
    rows = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]


def test_mobilenetv2_phases_freeze_backbone_but_not_batchnorm_mode(mobilenet_weights):
    import keras

    from agegender.train.models import ModelSpec, backbone_of, build_model, set_backbone_trainable

    model = build_model(ModelSpec(arch="mobilenetv2", img_size=64, weights=str(mobilenet_weights)))
    assert set(model.output.keys() if isinstance(model.output, dict) else model.output_names) >= {"age", "gender"}
    set_backbone_trainable(model, False)
    assert len(model.trainable_weights) == 8  # two dense layers per head
    set_backbone_trainable(model, True)
    bns = [l for l in backbone_of(model).layers if isinstance(l, keras.layers.BatchNormalization)]
    assert bns and not any(l.trainable for l in bns)
    assert len(model.trainable_weights) > 50
    out = model(np.zeros((2, 64, 64, 3), np.float32))
    assert out["age"].shape == (2, 101) and out["gender"].shape == (2, 1)
    assert np.allclose(np.asarray(out["age"]).sum(-1), 1, atol=1e-4)


def test_evaluate_tiny_set(utkface_sample, tmp_path):
    from agegender.train.evaluate import evaluate_model
    from agegender.train.trainer import train

    train(_config(utkface_sample, tmp_path / "run"))
    report = evaluate_model(str(tmp_path / "run" / "model.keras"), str(utkface_sample), split="test",
                            out=str(tmp_path / "eval"))
    assert report.n_images == 16
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["n_images"] == 16 and 0 <= m["age_mae"] < 100
    assert sum(v["n"] for v in m["age_mae_by_band"].values()) == 16
    assert sum(v["n"] for v in m["by_gender"].values()) == 16
    assert 0 <= m["gender"]["accuracy"] <= 1
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 1000
    assert "Age groups" in (tmp_path / "eval" / "report.md").read_text()
    all_report = evaluate_model(str(tmp_path / "run" / "model.keras"), str(utkface_sample), split="all")
    assert all_report.n_images == 128


def test_landmarks_are_cached_once_and_reused(utkface_sample, yunet_model, tmp_path, monkeypatch):
    from agegender.train import data as data_mod
    from agegender.train import landmarks as L

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    records, _ = data_mod.read_dataset(str(utkface_sample))
    found = L.load_landmarks(records[:20], str(utkface_sample), str(yunet_model))
    assert len(found) >= 18 and all(p.shape == (5, 2) for p in found.values())
    cache = L.cache_path(str(utkface_sample), str(yunet_model))
    assert os.path.isfile(cache)

    def no_detection(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(L, "detect_landmarks", no_detection)
    again = L.load_landmarks(records[:20], str(utkface_sample), str(yunet_model))
    assert again.keys() == found.keys() and all(np.array_equal(again[k], found[k]) for k in found)


def test_camera_view_without_perturbation_is_the_runtime_alignment(utkface_sample, yunet_model):
    from agegender.edge.contract import InputContract, face_input
    from agegender.edge.detectors import YuNetDetector
    from agegender.edge.images import read_canonical
    from agegender.train.dataset import camera_view

    crop = read_canonical(str(sorted(utkface_sample.iterdir())[0]))
    points = YuNetDetector(str(yunet_model)).detect(crop)[0].landmarks
    contract = InputContract(size=64)
    rng = np.random.default_rng(0)
    same = camera_view(crop, points, contract, rng, scale_range=(1.0, 1.0), max_rotation=0.0, landmark_noise=0.0)
    reference = face_input(crop, contract, landmarks=points)
    assert same.shape == (64, 64, 3) and same.dtype == np.uint8
    assert np.abs(same.astype(int) - reference.astype(int)).mean() < 2.0  # only the padding differs
    moved = camera_view(crop, points, contract, rng)  # shrunk/rotated/jittered: same face, a bit different
    assert 1.0 < np.abs(moved.astype(int) - reference.astype(int)).mean() < 40


def test_greedy_average_considers_the_starting_model_and_keeps_the_best(utkface_sample, tmp_path):
    """--average greedy after --init-from: epoch 0 (the starting model) is scored and may join; the run's
    model is the kept average only when it beats every trained epoch, and its card says which epochs."""
    from agegender.train.model_io import load_model
    from agegender.train.trainer import train

    train(_config(utkface_sample, tmp_path / "start"))
    state = train(_config(utkface_sample, tmp_path / "run", epochs=2, init_from=str(tmp_path / "start" / "model.keras"),
                          average="greedy"))
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["epoch_00.npz", "epoch_01.npz", "epoch_02.npz"]
    soup = state["soup"]
    assert sorted(row["epoch"] for row in soup["tried"]) == [0, 1, 2]
    history = [float(r.split(",")[4]) for r in (run / "history.csv").read_text().strip().splitlines()[1:]]
    card = json.loads((run / "model.json").read_text())
    assert card["weight_average"]["epochs"] == soup["epochs"]
    final = load_model(str(run / "model.keras"), compile=False).get_weights()
    if soup.get("file"):  # kept: it scored better than every trained epoch
        assert soup["score"] < min(history)
        assert np.allclose(final[0], load_model(str(run / "averaged.keras"), compile=False).get_weights()[0])
    else:
        assert soup["score"] >= min(history)
        assert np.allclose(final[0], load_model(str(run / "best.keras"), compile=False).get_weights()[0])
