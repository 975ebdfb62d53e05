"""The model diagnostics in benchmarks/: degraded validation faces and heads refitted on features."""
import importlib.util
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, needs_tf


def load_benchmark(name: str):
    """A script of benchmarks/, imported as ``python benchmarks/NAME.py`` runs it (its folder on the path)."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def degraded_val():
    return load_benchmark("degraded_val")


@pytest.fixture(scope="module")
def face_inputs():
    """Two 128 px model-sized inputs cut from the README sample (a real face, public domain)."""
    image = cv2.cvtColor(cv2.imread(str(REPO / "edge" / "samples" / "astronaut.png")), cv2.COLOR_BGR2RGB)
    side = min(image.shape[:2])
    square = image[:side, :side]
    return np.stack([cv2.resize(square, (128, 128), interpolation=cv2.INTER_AREA),
                     cv2.resize(square[::-1], (128, 128), interpolation=cv2.INTER_AREA)])


def test_every_degradation_is_seeded_by_condition_and_face(degraded_val, face_inputs):
    for name, kind, fn in degraded_val.CONDITIONS:
        once = degraded_val.degrade(face_inputs, name, ["a.jpg", "b.jpg"])
        again = degraded_val.degrade(face_inputs, name, ["a.jpg", "b.jpg"])
        assert once.dtype == np.uint8 and once.shape == face_inputs.shape, name
        np.testing.assert_array_equal(once, again, err_msg=name)  # every model sees the same damage
        changed = np.abs(once.astype(int) - face_inputs).mean()
        if fn is None:
            assert changed == 0
        else:
            assert changed > 0.5, f"{name} barely changes a face ({changed:.2f} grey levels)"


def test_seen_conditions_are_the_training_augmentations(degraded_val):
    from agegender.train import augment

    seen = {name: fn for name, kind, fn in degraded_val.CONDITIONS if kind == "seen"}
    assert set(seen) == set(augment.FAMILIES) - {"jitter"}  # jitter moves the crop, not its pixels
    assert seen["jpeg"] is augment.jpeg and seen["noise"] is augment.sensor_noise


def test_held_out_degradations_do_what_they_say(degraded_val, face_inputs):
    face = face_inputs[0]
    rng = np.random.default_rng(0)
    pixelated = degraded_val.pixelate(face, rng)
    assert len(np.unique(pixelated.reshape(-1, 3), axis=0)) < 41 * 41  # blocks, at most 40 x 40 colours
    cast = degraded_val.tungsten(face, rng).astype(float)
    assert cast[..., 0].mean() > face[..., 0].mean() and cast[..., 2].mean() < face[..., 2].mean()
    sharp = cv2.Laplacian(face, cv2.CV_64F).var()
    assert cv2.Laplacian(degraded_val.defocus(face, rng), cv2.CV_64F).var() < sharp / 3


def test_unknown_condition_is_a_one_line_error(degraded_val, capsys):
    with pytest.raises(SystemExit):
        degraded_val.main(["--model", "x.keras", "--data", "d", "--align-detector", "y.onnx",
                           "--conditions", "clean,fog"])
    assert "unknown condition(s) fog" in capsys.readouterr().err


@needs_tf
def test_refit_heads_start_as_the_models_own():
    """The heads rebuilt on the features input, with the model's weights, answer as the whole model."""
    head_refit = load_benchmark("head_refit")
    from agegender.train.model_io import load_model

    model = load_model(str(REPO / "models" / "agegender_mnv2_128.keras"), compile=False)
    inputs = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3)).astype(np.float32)
    whole = model.predict_on_batch(inputs)
    features = head_refit.feature_model(model).predict_on_batch(inputs)
    heads = head_refit.head_model(model, fresh=False, seed=0).predict_on_batch(features)
    for head in ("age", "gender"):
        np.testing.assert_allclose(heads[head], whole[head], atol=1e-5)
    fresh = head_refit.head_model(model, fresh=True, seed=0).predict_on_batch(features)
    assert np.abs(fresh["age"] - whole["age"]).max() > 1e-3  # fresh means fresh
    # on the feature map before the pooling, both poolings start as the model's own average
    feature_map = head_refit.feature_model(model, spatial=True).predict_on_batch(inputs)
    assert feature_map.shape == (3, 4, 4, 1280)
    for pooling in ("gap", "gdc"):
        spatial = head_refit.head_model(model, False, 0, feature_map.shape[1:], pooling).predict_on_batch(feature_map)
        for head in ("age", "gender"):
            np.testing.assert_allclose(spatial[head], whole[head], atol=1e-5)


def test_distribution_median_is_read_within_the_bin():
    head_refit = load_benchmark("head_refit")
    probs = np.zeros((3, 101))
    probs[0, 30] = 1.0  # all at 30 (ages 29.5-30.5): the half is reached at its middle
    probs[1, [10, 50]] = [0.25, 0.75]  # a quarter at 10: the half is reached a third into bin 50
    probs[2, [20, 90]] = [0.5, 0.5]  # exactly half by the end of bin 20
    np.testing.assert_allclose(head_refit.distribution_median(probs), [30.0, 49.5 + 1 / 3, 20.5], atol=1e-6)


def test_benchmark_help_keeps_its_example_commands_whole():
    """A script's --help prints its docstring: a backslash ending a line of an example command must
    stay there (a raw docstring), or the command is glued into one unreadable line."""
    import ast

    for path in sorted((REPO / "benchmarks").glob("*.py")):
        source = path.read_text()
        doc = ast.get_docstring(ast.parse(source), clean=False)
        if doc and "\\\n" in source.split('"""')[1]:
            assert "\\\n" in doc, f"{path.name}: make its docstring raw (r\"\"\"...) so --help keeps the line breaks"


def test_ridge_read_out_recovers_a_linear_relation_and_its_intercept():
    probe = load_benchmark("face_descriptor_probe")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5)) * [1, 10, 0.1, 3, 1] + [0, 50, 0, -2, 7]
    y = x @ np.array([2.0, -0.5, 30.0, 0.0, 1.0]) + 40.0
    predict = probe.ridge_fit(x, y, ridge=1e-6)
    new = rng.normal(size=(10, 5)) * [1, 10, 0.1, 3, 1] + [0, 50, 0, -2, 7]
    np.testing.assert_allclose(predict(new), new @ np.array([2.0, -0.5, 30.0, 0.0, 1.0]) + 40.0, atol=1e-6)
    # a heavy penalty shrinks the slopes, never the intercept: the answer falls back to the mean
    flat = probe.ridge_fit(x, y, ridge=1e12)
    np.testing.assert_allclose(flat(new), np.full(10, y.mean()), atol=1e-3)


def test_gender_accuracy_by_threshold_counts_calls_from_the_threshold_up():
    probe = load_benchmark("gender_threshold")
    female_prob = np.array([0.2, 0.45, 0.5, 0.6, 0.9])
    is_female = np.array([0, 1, 0, 1, 1])
    # at 0.4: F F F F for the last four, so the 0.5 boy is wrong (4 of 5); at 0.5: the 0.45 girl and
    # the 0.5 boy are wrong (3 of 5); at 0.55: only the 0.45 girl is wrong (4 of 5); at 0.95: every
    # girl is wrong (2 of 5)
    np.testing.assert_allclose(probe.accuracy_by_threshold(female_prob, is_female, (0.4, 0.5, 0.55, 0.95)),
                               [0.8, 0.6, 0.8, 0.4])
