"""Training, evaluation and the CLI on a few real UTKFace crops (needs the [train] extras)."""
import json

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
    assert card["input"]["size"] == 48 and card["outputs"] == ["age", "gender"]
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
