"""Export: every format from a small model trained a few steps on real crops (needs [train])."""
import json
import os

import numpy as np
import pytest

from conftest import needs_tf

pytestmark = needs_tf

TOLERANCE_YEARS = {"tflite-fp32": 0.01, "tflite-fp16": 0.5, "onnx-fp32": 0.01, "tflite-int8": 6.0, "onnx-int8": 6.0}


@pytest.fixture(scope="module")
def small_model(utkface_sample, tmp_path_factory):
    from agegender.train.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("small_run")
    train(TrainConfig(data=str(utkface_sample), out=str(out), arch="cnn", img_size=32, width=8, epochs=1,
                      batch_size=16, workers=1, command="pytest"))
    return out / "model.keras"


def test_every_format_exports_and_agrees_with_keras(small_model, utkface_sample, tmp_path):
    from agegender.edge.backends import open_model
    from agegender.edge.card import ModelCard
    from agegender.edge.model import AgeGenderModel
    from agegender.edge.postprocess import age_mean_std
    from agegender.export.exporter import export_model
    from agegender.train import data
    from agegender.train.evaluate import model_inputs
    from agegender.train.keras_backend import open_any_model

    formats = list(TOLERANCE_YEARS)
    result = export_model(str(small_model), formats, str(tmp_path / "out"), calib=str(utkface_sample),
                          calib_size=96, split="test", name="small",
                          max_mae_increase=100, max_gender_drop=100)  # a barely trained model: agreement is checked below
    assert [c.format for c in result.checks] == formats
    keras_model = open_any_model(str(small_model))
    records = data.select_split(data.read_dataset(str(utkface_sample))[0], "test")
    images = model_inputs(keras_model, records)
    keras_out = keras_model.run(images)
    keras_age = age_mean_std(np.asarray(keras_out["age"]))[0]
    for check in result.checks:
        exported = AgeGenderModel.open(check.path)  # its card read and its sha256 checked
        assert set(exported.backend.info.output_names) == {"age", "gender"}  # output names survive
        outs = exported.run(images)
        age = age_mean_std(outs["age"])[0]
        gender = outs["gender"].ravel()
        assert np.max(np.abs(age - keras_age)) <= TOLERANCE_YEARS[check.format], check.format
        tol = 0.01 if check.format.endswith(("fp32", "fp16")) else 0.2
        assert np.max(np.abs(gender - np.asarray(keras_out["gender"]).ravel())) <= tol, check.format
        card = json.loads(open(check.path + ".json").read())
        assert os.path.isfile(check.path + ".md")
        assert card["sha256"] and card["size_bytes"] == os.path.getsize(check.path)
        assert card["input"]["colour_order"] == "RGB" and card["input"]["size"] == 32
        assert card["schema_version"] == 2 and card["alignment"] == "crop" and card["task"] == "multi"
        assert "non-commercial" in card["licence"] and card["datasets"][0]["name"] == "utkface"
        assert card["metrics"]["split"] == "test" and "age_mae" in card["metrics"]
        # the exported card carries the training card's contract, not a default one
        assert ModelCard.load(check.path + ".json").contract == keras_model.card.contract
    int8 = open_model(str(tmp_path / "out" / "small_int8.tflite"))
    assert int8.info.input_dtype == "uint8"  # raw camera pixels go straight in
    assert "| tflite-int8 |" in result.table()


def test_cross_dataset_figures_are_measured_into_the_card(small_model, utkface_sample, tmp_path):
    from agegender.export.exporter import export_model
    from agegender.train import data
    from agegender.train.evaluate import evaluate_datasets

    result = export_model(str(small_model), ["tflite-fp32"], str(tmp_path), calib=str(utkface_sample), name="small",
                          max_mae_increase=100, max_gender_drop=100, cross_data=[str(utkface_sample)],
                          command="agegender export ... --cross-data SAMPLE")
    path = result.checks[0].path
    card = json.loads(open(path + ".json").read())
    [(name, row)] = card["cross_dataset_test"].items()
    report = evaluate_datasets(path, data.data_sources([str(utkface_sample)], None), split="test")[name]
    assert row["n"] == report.n_images == 16
    assert row["age_mae"] == pytest.approx(report.metrics["age_mae"], abs=1e-3)
    assert row["gender_accuracy"] == pytest.approx(report.metrics["gender"]["accuracy"], abs=1e-4)
    assert list(row["bias_by_band"]) == ["0-6", "7-12", "13-19", "20-39", "40-59", "60+"]
    assert card["cross_dataset_command"].endswith("--cross-data SAMPLE")
    assert "Across datasets" in open(path + ".md").read()


def test_onnx_alone_exports_from_a_freshly_loaded_model(small_model, utkface_sample, tmp_path):
    from agegender.export.exporter import export_model

    result = export_model(str(small_model), ["onnx-fp32"], str(tmp_path), calib=str(utkface_sample), name="small",
                          max_mae_increase=100, max_gender_drop=100)
    assert result.passed and os.path.isfile(result.checks[0].path)


def test_failing_format_is_removed(small_model, utkface_sample, tmp_path):
    from agegender.export.exporter import export_model

    result = export_model(str(small_model), ["tflite-fp16"], str(tmp_path), calib=str(utkface_sample),
                          split="test", name="small", max_mae_increase=-1.0)  # impossible tolerance
    assert not result.passed and "age MAE" in result.checks[0].reason
    assert not (tmp_path / "small_fp16.tflite").exists()


def test_model_needing_flex_ops_is_refused(tmp_path):
    import keras
    from keras import layers, ops

    from agegender.export.convert import ExportError, convert_tflite, export_saved_model

    @keras.saving.register_keras_serializable(package="test")
    class Erfinv(layers.Layer):  # tf.math.erfinv has no TFLite builtin
        def call(self, x):
            return ops.erfinv(ops.clip(x, -0.5, 0.5))

    inputs = keras.Input((8,), name="image")
    model = keras.Model(inputs, {"age": layers.Dense(2)(Erfinv()(inputs))})
    saved = export_saved_model(model, str(tmp_path))
    with pytest.raises(ExportError, match="Flex"):
        convert_tflite(saved, "fp32")


def test_calibration_coverage_is_checked():
    from agegender.export.calibration import CalibrationError, check_coverage
    from agegender.train.data import FaceRecord

    young = [FaceRecord(f"{i}.jpg", 20 + i % 10, i % 2) for i in range(100)]
    with pytest.raises(CalibrationError, match="span all ages"):
        check_coverage(young)
    spread = [FaceRecord(f"{i}.jpg", age, i % 2) for i, age in enumerate(list(range(0, 90, 3)) * 3)]
    assert check_coverage(spread)["n"] == 90


def test_atomic_write_leaves_no_file_on_failure(tmp_path, monkeypatch):
    from agegender.edge import files as convert

    target = tmp_path / "model.tflite"

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(convert.os, "replace", crash)
    with pytest.raises(OSError):
        convert.atomic_write_bytes(str(target), b"x" * 1000)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary file is cleaned up too
    monkeypatch.undo()
    convert.atomic_write_bytes(str(target), b"y" * 10)
    assert target.read_bytes() == b"y" * 10
