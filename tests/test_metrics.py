import numpy as np
import pytest

from agegender.edge.contract import AgeGroups
from agegender.edge.postprocess import age_mean_std, decode
from agegender.train import metrics as M


def test_mae_and_bands_by_hand():
    true = [5, 15, 30, 50, 70, 10]
    pred = [7, 15, 25, 50, 60, 10]
    assert M.mae(true, pred) == pytest.approx((2 + 0 + 5 + 0 + 10 + 0) / 6)
    bands = M.mae_by_band(true, pred)
    assert bands["0-6"] == {"mae": pytest.approx(2.0), "bias": pytest.approx(2.0), "n": 1}
    assert bands["7-12"] == {"mae": pytest.approx(0.0), "bias": pytest.approx(0.0), "n": 1}
    assert bands["20-39"]["mae"] == pytest.approx(5.0) and bands["20-39"]["bias"] == pytest.approx(-5.0)
    assert bands["60+"] == {"mae": pytest.approx(10.0), "bias": pytest.approx(-10.0), "n": 1}
    assert M.mean_signed_error([10, 20], [13, 19]) == pytest.approx(1.0)
    # the biases in band order 0-6, 7-12, 13-19, 20-39, 40-59, 60+
    np.testing.assert_allclose(M.band_biases(bands), [2.0, 0.0, 0.0, -5.0, 0.0, -10.0])


def test_confusion_and_per_class_by_hand():
    true = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    matrix = M.confusion_matrix(true, pred, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    scores = M.per_class_scores(matrix, ["a", "b", "c"])
    assert scores["a"]["precision"] == pytest.approx(1.0)
    assert scores["a"]["recall"] == pytest.approx(2 / 3)
    assert scores["a"]["f1"] == pytest.approx(0.8)
    assert scores["b"]["precision"] == pytest.approx(0.5) and scores["b"]["recall"] == pytest.approx(0.5)
    assert scores["c"]["precision"] == pytest.approx(0.5) and scores["c"]["f1"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["macro"]["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_binary_scores_by_hand():
    s = M.binary_scores([1, 1, 1, 0, 0], [1, 1, 0, 1, 0])
    assert s["accuracy"] == pytest.approx(0.6)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)


def test_age_mean_std_and_groups():
    dist = np.zeros((2, 101))
    dist[0, 30] = dist[0, 40] = 0.5  # mean 35, std 5
    dist[1, 8] = 2.0  # unnormalised (as a quantized output may be): mean 8, std 0
    mean, std = age_mean_std(dist)
    assert mean == pytest.approx([35, 8]) and std == pytest.approx([5, 0])
    stretched = age_mean_std(dist, np.arange(101) * 2.0)  # bins standing for other ages (benchmarks/age_remap.py)
    assert stretched[0] == pytest.approx([70, 16]) and stretched[1] == pytest.approx([10, 0])
    groups = AgeGroups()
    assert groups.probabilities(dist)[0].tolist() == pytest.approx([0, 0, 1, 0])
    assert [groups.name_of(a) for a in (0, 12, 13, 19, 20, 59, 60, 99)] == [
        "child", "child", "teenager", "teenager", "adult", "adult", "senior", "senior"]
    results = decode(dist, np.array([[0.9], [0.2]]))
    assert results[0].age_group == "adult" and results[0].gender == "female"
    assert results[1].gender == "male" and results[1].gender_prob == pytest.approx(0.8)
    assert results[0].label() == "35 ± 5 · F 0.90"


def test_age_groups_configurable():
    groups = AgeGroups.parse("young:0,mid:30,old:65")
    assert groups.names == ("young", "mid", "old")
    assert groups.index_of([10, 30, 64, 65]).tolist() == [0, 1, 1, 2]
    with pytest.raises(ValueError):
        AgeGroups.parse("a:5,b:3")
