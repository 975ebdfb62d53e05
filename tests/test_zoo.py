"""The model zoo (#6): every architecture and task builds, trains a step, saves and loads;
the autoencoder's encoder really moves into the backbone; the bias study's subsets."""
import json

import numpy as np
import pytest

from conftest import needs_tf
from agegender.train.data import FaceRecord


def _records(n_men, n_women):
    return ([FaceRecord(f"{20 + i}_0_0_{i}.jpg", 20 + i, 0, 0) for i in range(n_men)]
            + [FaceRecord(f"{30 + i}_1_1_{i}.jpg", 30 + i, 1, 1) for i in range(n_women)])


def test_bias_subsets_are_equal_sized_with_the_right_genders():
    from agegender.train.bias import bias_subsets

    records = _records(60, 40)
    subsets = bias_subsets(records, seed=3)
    male_only, mixed = subsets["male_only"], subsets["mixed"]
    assert len(male_only) == len(mixed) == 60  # every man; 30 women are available for the mixed half
    assert all(r.gender == 0 for r in male_only)
    assert sum(r.gender == 1 for r in mixed) == 30 and sum(r.gender == 0 for r in mixed) == 30
    for subset in subsets.values():
        assert len({r.name for r in subset}) == len(subset)  # no face drawn twice
    small = bias_subsets(records, size=21, seed=3)
    assert [len(s) for s in small.values()] == [21, 21]
    assert sum(r.gender == 1 for r in small["mixed"]) == 11
    assert bias_subsets(records, size=21, seed=3)["mixed"] == small["mixed"]  # seeded
    # few women cap the size: 10 women allow at most 20 faces per set
    assert len(bias_subsets(_records(60, 10))["male_only"]) == 20
    with pytest.raises(ValueError, match="at most 20"):
        bias_subsets(_records(60, 10), size=30)


def test_slice_metrics_per_gender_and_race():
    from agegender.train.bias import slice_metrics
    from agegender.train.evaluate import Predictions

    records = _records(3, 2)
    dist = np.zeros((5, 101))
    predicted = [25, 21, 70, 5, 31]  # true: 20, 21, 22 (men), 30, 31 (women)
    dist[np.arange(5), predicted] = 1
    pred = Predictions(records, dist, np.array([0.1, 0.2, 0.9, 0.8, 0.7]))
    from agegender.edge.card import ModelCard
    from agegender.edge.zoo import default_model_path

    m = slice_metrics(pred, ModelCard.load_for(default_model_path()).groups)
    assert m["overall"]["n"] == 5 and m["male"]["n"] == 3 and m["female"]["n"] == 2
    assert m["male"]["group_accuracy"] == pytest.approx(2 / 3)  # 70 is a senior, not an adult
    assert m["female"]["group_accuracy"] == pytest.approx(1 / 2)  # 5 is a child
    assert m["male"]["age_mae"] == pytest.approx((5 + 0 + 48) / 3)
    assert m["male"]["gender_accuracy"] == pytest.approx(2 / 3)
    assert set(m) >= {"White", "Black"}


def test_evaluation_gives_gender_accuracy_by_the_true_age_band():
    from agegender.train.evaluate import compute_metrics, Predictions

    ages, genders = [3, 5, 6, 10, 25, 70], [0, 1, 1, 0, 1, 0]
    records = [FaceRecord(f"{a}_{g}_0_{i}.jpg", a, g, 0) for i, (a, g) in enumerate(zip(ages, genders))]
    dist = np.zeros((6, 101))
    dist[np.arange(6), ages] = 1
    female_prob = np.array([0.6, 0.7, 0.2, 0.4, 0.9, 0.5])  # 0-6: wrong, right, wrong; 0.5 counts as female
    bands = compute_metrics(Predictions(records, dist, female_prob))["age_mae_by_band"]
    assert bands["0-6"]["gender_accuracy"] == pytest.approx(1 / 3)
    assert bands["7-12"]["gender_accuracy"] == 1.0 and bands["20-39"]["gender_accuracy"] == 1.0
    assert bands["60+"]["gender_accuracy"] == 0.0
    assert np.isnan(bands["13-19"]["gender_accuracy"]) and bands["13-19"]["n"] == 0


@needs_tf
@pytest.mark.parametrize("arch", ["cnn", "cnn-skip", "autoencoder", "mobilenetv2"])
def test_each_architecture_builds_trains_a_step_and_round_trips(arch, tmp_path, mobilenet_weights):
    import keras

    from agegender.train.model_io import load_model
    from agegender.train.models import ModelSpec, build_model
    from agegender.train.trainer import TrainConfig, compile_model

    spec = ModelSpec(arch=arch, img_size=64 if arch != "mobilenetv2" else 96, width=8,
                     weights=str(mobilenet_weights) if arch == "mobilenetv2" else None)
    model = build_model(spec)
    compile_model(model, TrainConfig(data="", out="", arch=arch), 1e-3)
    x = np.random.default_rng(0).integers(0, 255, (4, spec.img_size, spec.img_size, 3)).astype(np.float32)
    y = {"age": np.array([[3.0], [25.0], [40.0], [70.0]], np.float32), "gender": np.array([[0], [1], [0], [1]], np.float32)}
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(x, y)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = str(tmp_path / f"{arch}.keras")
    model.save(path)
    again = load_model(path, compile=False)
    out, out_again = model(x, training=False), again(x, training=False)
    for name in ("age", "gender"):
        assert np.allclose(np.asarray(out[name]), np.asarray(out_again[name]), atol=1e-5)
    keras.backend.clear_session()


@needs_tf
@pytest.mark.parametrize("task,outputs", [("age", {"age": (101,)}), ("gender", {"gender": (1,)}),
                                          ("group", {"group": (4,)}), ("multi", {"age": (101,), "gender": (1,)})])
def test_each_task_has_its_heads_and_trains(task, outputs):
    from agegender.train.dataset import labels_for
    from agegender.train.models import TASK_OUTPUTS, ModelSpec, build_model
    from agegender.train.trainer import TrainConfig, compile_model

    model = build_model(ModelSpec(arch="cnn", task=task, img_size=32, width=8))
    compile_model(model, TrainConfig(data="", out="", arch="cnn", task=task), 1e-3)
    records = _records(2, 2)
    x = np.zeros((4, 32, 32, 3), np.float32)
    from agegender.edge.card import new_training_card

    groups = new_training_card(32, task, "crop").groups
    logs = model.train_on_batch(x, labels_for(records, TASK_OUTPUTS[task], groups), return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    out = model(x, training=False)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == outputs
    if task == "group":
        assert np.allclose(np.asarray(out["group"]).sum(-1), 1, atol=1e-5)


@needs_tf
def test_autoencoder_encoder_weights_transfer_and_freeze(utkface_sample, tmp_path):
    import keras

    from agegender.train import data as data_mod
    from agegender.train.autoencoder import pretrain_autoencoder
    from agegender.train.models import ModelSpec, backbone_of, build_model, set_backbone_trainable

    records, _ = data_mod.read_dataset(str(utkface_sample))
    spec = ModelSpec(arch="cnn", img_size=32, width=8)
    from agegender.edge.card import new_training_card

    contract = new_training_card(32, "multi", "crop").contract
    result = pretrain_autoencoder(records[:32], records[32:40], str(tmp_path / "ae"), spec, contract, epochs=1,
                                  batch_size=16, workers=1)
    assert (tmp_path / "ae" / "reconstructions.png").stat().st_size > 500
    assert np.isfinite(result.val_mae) and 0 < result.val_mae < 1
    encoder = keras.models.load_model(result.encoder_path, compile=False)

    model = build_model(ModelSpec(arch="autoencoder", img_size=32, width=8, weights=result.encoder_path))
    backbone = backbone_of(model)
    pairs = list(zip(encoder.get_weights(), backbone.get_weights()))
    assert len(pairs) > 10 and all(np.array_equal(a, b) for a, b in pairs)
    fresh = backbone_of(build_model(ModelSpec(arch="autoencoder", img_size=32, width=8)))
    assert not all(np.array_equal(a, b) for a, b in zip(encoder.get_weights(), fresh.get_weights()))

    set_backbone_trainable(model, False)  # phase "head": only the heads learn
    assert not backbone.trainable_weights and len(model.trainable_weights) == 8  # 2 heads x 2 dense
    set_backbone_trainable(model, True)  # phase "finetune": the encoder learns too (not its BatchNorm)
    assert len(backbone.trainable_weights) > 0
    assert all(not layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization))

    with pytest.raises(ValueError, match="do not fit"):
        build_model(ModelSpec(arch="autoencoder", img_size=32, width=16, weights=result.encoder_path))


@needs_tf
def test_train_autoencoder_arch_runs_both_stages_and_saves_each_phase(utkface_sample, tmp_path):
    from agegender.train.trainer import TrainConfig, train

    config = TrainConfig(data=str(utkface_sample), out=str(tmp_path / "run"), arch="autoencoder", img_size=32,
                         width=8, head_epochs=1, epochs=1, ae_epochs=1, batch_size=16, workers=1, command="pytest")
    state = train(config)
    assert state["finished"]
    run = tmp_path / "run"
    assert (run / "autoencoder" / "encoder.keras").is_file() and (run / "head.keras").is_file()
    card = json.loads((run / "model.json").read_text())
    assert card["autoencoder_pretraining"]["epochs"] == 1
    phases = [line.split(",")[1] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert phases == ["head", "finetune"]


@needs_tf
def test_bias_command_end_to_end_on_a_tiny_set(utkface_sample, tmp_path):
    from agegender.edge.cli import main

    out = tmp_path / "bias"
    assert main(["bias", "--data", str(utkface_sample), "--arch", "cnn", "--width", "8", "--img-size", "32",
                 "--epochs", "1", "--batch-size", "16", "--workers", "1", "--size", "20", "--out", str(out)]) == 0
    report = json.loads((out / "bias.json").read_text())
    assert report["train_size"] == 20 and set(report["results"]) == {"male_only", "mixed"}
    for subset in ("male_only", "mixed"):
        overall = report["results"][subset]["overall"]
        assert overall["n"] == report["test_size"] == 16
        assert 0 <= overall["group_accuracy"] <= 1 and overall["age_mae"] >= 0
        assert report["results"][subset]["male"]["n"] + report["results"][subset]["female"]["n"] == 16
    assert "| male | male-only |" in (out / "bias.md").read_text()
    assert (out / "bias.png").stat().st_size > 2000
