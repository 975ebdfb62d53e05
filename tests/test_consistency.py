"""Consistency training: paired batches and the losses that compare their halves (train/losses.py)."""
import numpy as np
import pytest

from conftest import needs_tf

pytestmark = needs_tf


def _age_dist(ages):
    bins = np.arange(101)
    d = np.exp(-0.5 * ((bins[None, :] - np.asarray(ages, float)[:, None]) / 2.0) ** 2)
    return (d / d.sum(1, keepdims=True)).astype(np.float32)


def test_paired_difference_compares_twins_and_ignores_unpaired_batches():
    from agegender.train.losses import paired_difference

    values = np.array([1.0, 2.0, 4.0, 7.0], np.float32)
    paired_labels = np.array([[30.0], [40.0], [30.0], [40.0]], np.float32)
    np.testing.assert_allclose(np.asarray(paired_difference(paired_labels, values)), [3.0, 5.0, 3.0, 5.0])
    unpaired = np.array([[30.0], [40.0], [31.0], [40.0]], np.float32)
    np.testing.assert_allclose(np.asarray(paired_difference(unpaired, values)), 0.0)
    # an odd batch (the last validation batch) is never paired, and keeps its length
    odd = paired_difference(np.array([[1.0], [2.0], [3.0]], np.float32), np.array([1.0, 2.0, 3.0], np.float32))
    np.testing.assert_allclose(np.asarray(odd), 0.0)


def test_consistency_adds_to_the_loss_only_where_twins_disagree():
    from agegender.train.losses import AgeDistributionLoss, GenderLoss

    ages = np.array([[20.0], [50.0], [20.0], [50.0]], np.float32)
    same = _age_dist([21, 48, 21, 48])
    apart = _age_dist([21, 48, 25, 48])  # the first face's second view reads 4 years older
    plain, consistent = AgeDistributionLoss(), AgeDistributionLoss(consistency=0.5)
    assert float(consistent(ages, same)) == pytest.approx(float(plain(ages, same)), abs=1e-5)
    extra = float(consistent(ages, apart)) - float(plain(ages, apart))
    assert extra == pytest.approx(0.5 * 4.0 * 2 / 4, rel=0.02)  # both twins carry |4 y|, mean over 4 samples

    genders = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    probs = np.array([[0.9], [0.2], [0.6], [0.2]], np.float32)
    bce = float(GenderLoss()(genders, probs))
    expected = -np.mean(np.log([0.9, 0.8, 0.6, 0.8]))
    assert bce == pytest.approx(expected, rel=1e-4)  # plain binary cross-entropy
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    gap = (logit(0.9) - logit(0.6)) ** 2
    assert float(GenderLoss(consistency=1.0)(genders, probs)) == pytest.approx(expected + gap * 2 / 4, rel=1e-4)


def test_paired_sequence_repeats_each_face_with_a_new_augmentation(utkface_sample):
    from agegender.edge.contract import InputContract
    from agegender.train import data
    from agegender.train.dataset import FaceSequence

    records = data.select_split(data.read_dataset(str(utkface_sample))[0], "train")
    seq = FaceSequence(records, InputContract(size=48), batch_size=8, augment_images=True, shuffle=True,
                       workers=1, pairs=True)
    x, y = seq[0]
    assert x.shape[0] == 8 and len(seq) == int(np.ceil(len(records) / 8))
    np.testing.assert_array_equal(y["age"][:4], y["age"][4:])
    np.testing.assert_array_equal(y["gender"][:4], y["gender"][4:])
    assert not np.array_equal(x[:4], x[4:])  # the same faces, augmented independently
