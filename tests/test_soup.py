"""Weight averaging over epochs (train/soup.py): the mean, the greedy choice, snapshot files."""
import numpy as np
import pytest

pytest.importorskip("keras")

from agegender.train.soup import (greedy_soup, list_snapshots, load_snapshot, mean_weights, save_snapshot,
                                  snapshot_file)


def weights(value):
    return [np.full((2, 3), value, np.float32), np.full((3,), -value, np.float32)]


def test_mean_weights_is_elementwise_and_keeps_dtype():
    mean = mean_weights([weights(1.0), weights(3.0)])
    assert [m.dtype for m in mean] == [np.float32, np.float32]
    np.testing.assert_allclose(mean[0], 2.0)
    np.testing.assert_allclose(mean[1], -2.0)
    with pytest.raises(ValueError):
        mean_weights([weights(1.0), weights(1.0)[:1]])


def test_snapshots_round_trip(tmp_path):
    folder = str(tmp_path / "snapshots")
    for epoch, value in ((1, 1.0), (2, 2.0), (10, 5.0)):
        save_snapshot(weights(value), snapshot_file(folder, epoch))
    found = list_snapshots(folder)
    assert sorted(found) == [1, 2, 10]
    np.testing.assert_array_equal(load_snapshot(found[10])[1], weights(5.0)[1])
    assert list_snapshots(str(tmp_path / "missing")) == {}


def test_greedy_soup_keeps_only_epochs_that_improve_the_average(tmp_path):
    # the score of a weight set: distance of its first value from 2.0 (the best model lies between epochs)
    values = {1: 1.0, 2: 3.0, 3: 9.0, 4: 1.4}
    folder = str(tmp_path)
    for epoch, value in values.items():
        save_snapshot(weights(value), snapshot_file(folder, epoch))
    scores = {e: abs(v - 2.0) for e, v in values.items()}  # each epoch's own score, as in history.csv
    evaluate = lambda ws: abs(float(ws[0].flat[0]) - 2.0)  # noqa: E731
    averaged, result = greedy_soup(scores, list_snapshots(folder), evaluate)
    # tried best own score first: 4 (0.6), 1 (1.0), 2 (1.0, after 1 on the tie), 3 (7.0)
    assert [row["epoch"] for row in result.tried] == [4, 1, 2, 3]
    assert result.epochs == [4, 2]  # 4+1 -> 1.2 (worse), 4+2 -> 2.2 (better), 4+2+3 worse
    np.testing.assert_allclose(averaged[0], 2.2, rtol=1e-6)
    assert result.score == pytest.approx(0.2, abs=1e-6)
    assert result.best_single_score == pytest.approx(0.6, abs=1e-6)
    assert [row["kept"] for row in result.tried] == [True, False, True, False]
