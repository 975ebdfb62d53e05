"""Training for the wild: several datasets, age-balanced draws, camera and old-photo augmentation."""
import os

import cv2
import numpy as np
import pytest

from agegender.train import augment as aug
from agegender.train import data
from agegender.train.sampling import age_balance_weights, expected_age_histogram, sampling_probabilities


def test_dataset_names_come_from_folders_or_are_given():
    assert data.DataSource.parse("/x/shared/data/utkface").name == "utkface"
    assert data.DataSource.parse("/x/shared/data/aaf/labels.csv").name == "aaf"
    src = data.DataSource.parse("faces=/somewhere/labels.csv")
    assert (src.name, src.path) == ("faces", "/somewhere/labels.csv")
    assert data.DataSource.parse("aaf=x.csv").splits_folder().endswith(os.path.join("splits", "aaf"))
    assert "non-commercial" in data.DataSource.parse("a/utkface").describe()["licence"]


def test_aaf_split_files_keep_the_official_val_half_apart():
    folder = data.shipped_split_dir("aaf")
    train, val, test = (data.read_split_names(s, folder) for s in ("train", "val", "test"))
    assert len(test) == 6517 and len(train) + len(val) == 6443
    assert not (train & val) and not (train & test) and not (val & test)
    assert 0.1 < len(val) / (len(train) + len(val)) < 0.2


def test_unknown_dataset_without_split_files_is_refused_clearly(tmp_path):
    src = data.DataSource("mystery", str(tmp_path))
    with pytest.raises(data.DatasetError, match="no shipped split files for dataset 'mystery'"):
        data.select_source_split([], "train", src)


def test_age_balance_lifts_sparse_ages_and_keeps_dataset_shares():
    rng = np.random.default_rng(0)
    ages = np.concatenate([rng.integers(20, 36, 900), rng.integers(0, 13, 60), rng.integers(60, 90, 40)])
    flat = age_balance_weights(ages, power=0.0)
    assert np.allclose(flat, 1.0)
    w = age_balance_weights(ages, power=1.0)
    assert w[ages < 13].mean() > 5 * w[(ages >= 20) & (ages < 36)].mean()
    bands = (0, 13, 20, 60)
    raw = expected_age_histogram(ages, np.full(len(ages), 1 / len(ages)), bands)
    balanced = expected_age_histogram(ages, w / w.sum(), bands)
    assert balanced[0] > 2 * raw[0] and balanced[3] > 2 * raw[3]
    datasets = np.array(["a"] * 700 + ["b"] * 300)
    p = sampling_probabilities(datasets, ages, {"a": 0.25, "b": 0.75}, age_power=0.5)
    assert p.sum() == pytest.approx(1.0)
    assert p[datasets == "b"].sum() == pytest.approx(0.75)


def test_augment_families_parse_and_change_the_picture():
    assert aug.parse_families("all") == aug.FAMILIES and aug.parse_families("none") == ()
    with pytest.raises(ValueError, match="unknown augmentation family sparkle"):
        aug.parse_families("blur,sparkle")
    rng = np.random.default_rng(1)
    face = np.zeros((128, 128, 3), np.uint8)
    face[:, :, 0] = np.linspace(40, 220, 128)[None, :]
    face[32:96, 32:96, 1] = 200
    for fn in (aug.white_balance_exposure, aug.low_resolution, aug.blur, aug.sensor_noise, aug.jpeg):
        out = fn(face, rng)
        assert out.shape == face.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - face).mean() > 0.5, fn.__name__
    grey = aug.grey_or_sepia(face, np.random.default_rng(3))
    r, g, b = (grey[:, :, i].astype(int) for i in range(3))
    assert (r >= g).all() and (g >= b).all()  # grey (equal) or sepia (warm): never a colour cast
    # with every family at probability 1 each one is applied; with none the picture is untouched
    assert np.array_equal(aug.after_alignment(face, rng, ()), face)
    assert aug.camera_parameters(["jitter"])[2] > aug.camera_parameters([])[2]


FRONTAL = np.array([[70, 80], [130, 80], [100, 110], [75, 140], [125, 140]], float)  # eyes 60 px apart


def test_face_quality_from_landmarks_pose_roll_and_size():
    from agegender.edge.quality import LOW_QUALITY, face_quality

    q = face_quality(FRONTAL)
    assert abs(q.yaw) < 1e-6 and abs(q.roll) < 1e-6 and q.size == pytest.approx(60)
    assert q.pose == "frontal" and q.score == pytest.approx(1.0) and not q.low
    turned = FRONTAL.copy()
    turned[2, 0] += 0.27 * 60  # nose 0.27 eye distances off the eyes' midpoint
    assert face_quality(turned).pose == "turned" and 0.3 < face_quality(turned).score < 1
    profile = FRONTAL.copy()
    profile[2, 0] -= 0.5 * 60
    q = face_quality(profile)
    assert q.pose == "profile" and q.yaw < 0 and q.low and q.score < LOW_QUALITY
    tiny = FRONTAL * 0.1  # eyes 6 px apart
    assert face_quality(tiny).score < 0.3
    rotated = FRONTAL @ np.array([[0.0, 1.0], [-1.0, 0.0]]).T  # the whole face turned 90 degrees in plane
    assert abs(abs(face_quality(rotated).roll) - 90) < 1e-6 and face_quality(rotated).score == 0
    assert face_quality(np.zeros((5, 2))).score == 0  # degenerate landmarks: no trust at all


def test_poor_faces_get_a_wider_spread_and_barely_move_a_track():
    from agegender.edge.estimator import widen_for_quality
    from agegender.edge.postprocess import AgeGender
    from agegender.edge.quality import FaceQuality
    from agegender.edge.tracker import IoUTracker

    result = AgeGender(30.0, 4.0, "adult", "female", 0.9, 0.9)
    assert widen_for_quality(result, FaceQuality(0, 0, 60, 1.0)).age_std == pytest.approx(4.0)
    assert widen_for_quality(result, FaceQuality(0.6, 0, 60, 0.0)).age_std == pytest.approx(8.0)
    assert widen_for_quality(result, None).age_std == pytest.approx(4.0)

    box = (100, 100, 80, 80)
    frontal, profile = IoUTracker(smoothing=0.3), IoUTracker(smoothing=0.3)
    for tracker in (frontal, profile):
        tracker.update([box], [30.0], [4.0], [0.9], [1.0])
    for _ in range(5):  # the same face turned away reads 50 and male for 5 frames
        moved_by_frontal = frontal.update([box], [50.0], [4.0], [0.1], [1.0])[0]
        moved_by_profile = profile.update([box], [50.0], [4.0], [0.1], [0.0])[0]
    assert moved_by_frontal.age > 44 and moved_by_frontal.female_prob < 0.5
    assert moved_by_profile.age < 31.6 and moved_by_profile.female_prob > 0.8


def test_flip_averages_the_face_and_its_mirror():
    import cv2

    from agegender.edge.estimator import Estimator

    sample = cv2.cvtColor(cv2.imread(os.path.join(os.path.dirname(__file__), "..", "edge", "samples",
                                                  "astronaut.png")), cv2.COLOR_BGR2RGB)
    plain = Estimator(detector=None)
    flipped = Estimator(detector=plain.detector, flip=True)
    face = cv2.resize(sample[0:220, 100:320], (128, 128), interpolation=cv2.INTER_AREA)[None]
    a, b = plain.infer(face)[0], plain.infer(np.ascontiguousarray(face[:, :, ::-1]))[0]
    both = flipped.infer(face)[0]
    assert both.female_prob == pytest.approx((a.female_prob + b.female_prob) / 2, abs=1e-6)
    assert min(a.age, b.age) - 1e-6 <= both.age <= max(a.age, b.age) + 1e-6


FRONTAL_WOMAN = "30_1_0_20170103182413737.jpg.chip.jpg"
TURNED_AWAY = ("26_0_3_20170119183101318.jpg.chip.jpg", "11_0_0_20170110220657089.jpg.chip.jpg")  # |yaw| ~0.6


def test_a_face_turning_away_and_back_keeps_its_gender_and_age(utkface_dir, yunet_model):
    """A track sees a frontal face, then faces turned away (here other people's profiles: the model's
    answers on them are unrelated), then the frontal face again: the profile frames barely move it."""
    from agegender.edge.estimator import Estimator
    from agegender.edge.images import read_canonical
    from agegender.edge.runner import smooth_faces
    from agegender.edge.tracker import IoUTracker
    from edge_helpers import paste_face

    def frame(name):
        crop = cv2.copyMakeBorder(read_canonical(str(utkface_dir / name)), 40, 40, 40, 40, cv2.BORDER_REFLECT_101)
        return paste_face(crop, center=(320, 240), scale=1.2)[0]

    sequence = [frame(FRONTAL_WOMAN)] * 6 + [frame(n) for n in TURNED_AWAY * 5] + [frame(FRONTAL_WOMAN)] * 4
    estimator, tracker = Estimator(detector=str(yunet_model)), IoUTracker(smoothing=0.3)
    tracks = []
    for image in sequence:
        faces = estimator.predict(image)
        assert len(faces) == 1
        tracks.append(smooth_faces(faces, tracker, estimator)[0])
    turned = [estimator.predict(frame(n))[0] for n in TURNED_AWAY]
    assert all(f.quality.pose == "profile" and f.quality.score < 0.05 for f in turned)
    assert any(abs(f.age - tracks[5].age) > 5 or f.gender != tracks[5].gender for f in turned)  # they disagree
    assert len({t.id for t in tracks}) == 1
    assert {t.gender for t in tracks} == {tracks[5].gender}
    assert max(abs(t.age - tracks[5].age) for t in tracks[5:]) <= 1.0


def test_alignment_views_nudge_the_face_about_the_crop_centre():
    from agegender.edge import contract as C

    contract = C.InputContract(size=64)
    matrix = np.array([[0.5, 0.1, 7.0], [-0.1, 0.5, 3.0]], np.float32)
    views = C.view_transforms(matrix, contract.canonical_size, 5)
    assert len(views) == 5 and np.allclose(views[0], matrix)
    point = np.array([40.0, 60.0, 1.0])
    aligned = matrix @ point
    centre = contract.canonical_size / 2
    for (scale, dx, dy), view in zip(C.ALIGNMENT_VIEWS, views):
        expected = centre + scale * (aligned - centre) + np.array([dx, dy]) * contract.canonical_size
        assert np.allclose(view @ point, expected, atol=1e-3)
    for bad in (0, 6, 2.5):
        with pytest.raises(ValueError, match="views must be a whole number from 1 to 5"):
            C.check_views(bad)


@pytest.fixture(scope="module")
def woman_crop(utkface_dir):
    from agegender.edge.images import read_canonical

    return read_canonical(str(utkface_dir / FRONTAL_WOMAN))


def test_the_first_view_is_the_face_as_aligned(woman_crop, yunet_model):
    from agegender.edge import contract as C
    from agegender.edge.detectors import YuNetDetector

    face_crop = woman_crop
    contract = C.InputContract(size=64)
    landmarks = YuNetDetector(yunet_model).detect(face_crop)[0].landmarks
    five = C.face_inputs(face_crop, contract, landmarks=landmarks, views=5)
    assert five.shape == (5, 64, 64, 3)
    assert np.array_equal(five[0], C.face_input(face_crop, contract, landmarks=landmarks))
    assert np.array_equal(C.canonical_inputs(face_crop, contract, views=1)[0], C.crop_to_input(face_crop, 64))
    nudged = C.canonical_inputs(face_crop, contract, views=3)
    assert nudged.shape == (3, 64, 64, 3) and np.abs(nudged[0].astype(int) - nudged[1]).mean() > 2


def test_views_average_a_faces_answers_over_its_cuts(woman_crop):
    from agegender.edge.estimator import Estimator
    from agegender.edge.model import AgeGenderModel
    from agegender.edge.zoo import default_model_path

    model, face_crop = default_model_path(), woman_crop
    m = AgeGenderModel.open(model)
    inputs = m.preprocess_crop(face_crop, views=5)
    each = m.run(inputs)
    averaged = m.run(np.concatenate([inputs, inputs]), views=5)
    for head, values in each.items():
        assert averaged[head].shape[0] == 2
        assert np.allclose(averaged[head][0], np.mean(values, axis=0), atol=1e-6)
        assert np.allclose(averaged[head][1], averaged[head][0])
    with pytest.raises(ValueError, match="not whole faces of 5 views"):
        m.run(inputs[:4], views=5)
    one = Estimator(model=model, detector=None, views=5).predict(face_crop, aligned=True)[0]
    expected = m.decode({k: np.mean(v, axis=0, keepdims=True) for k, v in each.items()})[0]
    assert one.female_prob == pytest.approx(expected.female_prob, abs=1e-6)
    with pytest.raises(ValueError, match="views must be"):
        Estimator(model=model, detector=None, views=9)


def test_two_detector_scales_average_each_faces_landmarks():
    from agegender.edge.detectors import Detection, TwoScaleDetector

    class Fixed:
        max_side = 320

        def __init__(self, faces):
            self.faces = faces

        def detect(self, image):
            return self.faces

    eyes = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float32)
    first = Detection((20.0, 20.0, 60.0, 80.0), 0.9, eyes)
    same_face = Detection((22.0, 20.0, 60.0, 80.0), 0.8, eyes + 2.0)
    elsewhere = Detection((300.0, 300.0, 50.0, 60.0), 0.95, eyes + 280.0)
    other_only = Detection((400.0, 20.0, 50.0, 60.0), 0.9, eyes + 380.0)
    image = np.zeros((480, 640, 3), np.uint8)

    found = TwoScaleDetector(Fixed([first, elsewhere]), Fixed([other_only, same_face])).detect(image)
    assert len(found) == 2  # the first pass decides which faces there are
    assert np.allclose(found[0].landmarks, eyes + 1.0) and found[0].box == (21.0, 20.0, 60.0, 80.0)
    assert found[0].score == 0.9
    assert found[1] is elsewhere  # not found by the second pass: as it was
    assert TwoScaleDetector(Fixed([]), Fixed([same_face])).detect(image) == []


def test_estimator_second_detection_size_averages_the_two_passes(yunet_model, photos_dir):
    from agegender.edge.detectors import TwoScaleDetector, YuNetDetector
    from agegender.edge.estimator import Estimator
    from agegender.edge.images import read_image

    picture = read_image(str(photos_dir / "astronaut.png"))
    estimator = Estimator(detector=str(yunet_model), second_detect_size=640)
    assert isinstance(estimator.detector, TwoScaleDetector) and estimator.detector.second.max_side == 640
    (face,) = estimator.detect(picture)
    small, large = (YuNetDetector(str(yunet_model), max_side=s).detect(picture)[0] for s in (320, 640))
    assert np.allclose(face.landmarks, (small.landmarks + large.landmarks) / 2, atol=1e-4)
    assert len(estimator.predict(picture)) == 1
    from agegender.edge.video import region_detector

    regions = region_detector(estimator.detector, 0.5)  # video mode searches regions with the first pass only
    assert isinstance(regions, YuNetDetector) and regions.max_side == 320 and regions.score_threshold == 0.5


def test_refined_landmarks_are_found_in_the_face_crop_and_mapped_back(yunet_model, photos_dir):
    """A face pasted twice as large at an offset: its refined landmarks are the crop's own landmarks
    (found as training finds them) scaled and moved the same way, not the detector's."""
    import cv2

    from agegender.edge.contract import face_input
    from agegender.edge.detectors import (CROP_DETECT_MAX_SIDE, YuNetDetector, crop_landmarks,
                                          refine_detection)
    from agegender.edge.estimator import Estimator
    from agegender.edge.images import read_image

    contract = Estimator(detector=None).contract  # the shipped model's card
    landmarker = YuNetDetector(str(yunet_model), max_side=CROP_DETECT_MAX_SIDE)
    picture = read_image(str(photos_dir / "astronaut.png"))
    (face,) = YuNetDetector(str(yunet_model), max_side=320).detect(picture)
    crop = face_input(picture, contract.with_size(contract.canonical_size), landmarks=face.landmarks)  # 200 x 200
    own = crop_landmarks(landmarker, crop)
    frame = np.full((600, 700, 3), 90, np.uint8)
    frame[30:430, 50:450] = cv2.resize(crop, (400, 400), interpolation=cv2.INTER_LINEAR)
    (found,) = YuNetDetector(str(yunet_model), max_side=320).detect(frame)
    refined = refine_detection(found, frame, landmarker, contract)
    assert refined.box == found.box and refined.score == found.score
    expected = own * 2.0 + np.array([50.0, 30.0], np.float32)
    eye = float(np.hypot(*(expected[1] - expected[0])))
    assert np.abs(refined.landmarks - expected).max() < 0.05 * eye


def test_refined_landmarks_agree_across_detector_sizes(yunet_model, photos_dir):
    """The point of refining: the detector places a face's landmarks differently at each size; found
    again in the face's crop they move half as much (the astronaut: 0.22 -> 0.11 eye distances)."""
    from agegender.edge.detectors import CROP_DETECT_MAX_SIDE, Detection, YuNetDetector, refine_detection
    from agegender.edge.estimator import Estimator
    from agegender.edge.images import read_image

    picture = read_image(str(photos_dir / "astronaut.png"))
    contract = Estimator(detector=None).contract  # the shipped model's card
    landmarker = YuNetDetector(str(yunet_model), max_side=CROP_DETECT_MAX_SIDE)
    found = {s: YuNetDetector(str(yunet_model), max_side=s).detect(picture)[0] for s in (160, 320, 640)}
    refined = {s: refine_detection(d, picture, landmarker, contract) for s, d in found.items()}
    eye = float(np.hypot(*(found[640].landmarks[1] - found[640].landmarks[0])))

    def disagreement(faces):
        return max(np.abs(faces[s].landmarks - faces[640].landmarks).max() for s in (160, 320)) / eye

    assert disagreement(refined) < 0.7 * disagreement(found)
    assert disagreement(refined) < 0.15
    boxed = Detection(found[320].box, 0.9)  # no landmarks (Haar): kept as it is
    assert refine_detection(boxed, picture, landmarker, contract) is boxed
    blank = np.zeros_like(picture)  # no face in the crop: the detector's landmarks are kept
    assert refine_detection(found[320], blank, landmarker, contract) is found[320]


def test_refining_again_settles_the_landmarks_across_detector_sizes(yunet_model, photos_dir):
    """Each pass cuts the crop by the last pass's landmarks: after three, the astronaut's landmarks found
    from the detector at 160/320/640 px agree at least twice as well as after one pass."""
    from agegender.edge.detectors import CROP_DETECT_MAX_SIDE, YuNetDetector, refine_detection
    from agegender.edge.estimator import Estimator
    from agegender.edge.images import read_image

    picture = read_image(str(photos_dir / "astronaut.png"))
    found = {s: YuNetDetector(str(yunet_model), max_side=s).detect(picture)[0] for s in (160, 320, 640)}
    once = Estimator(detector=str(yunet_model), refine_landmarks=True)
    thrice = Estimator(detector=str(yunet_model), refine_landmarks=True, refine_passes=3)
    eye = float(np.hypot(*(found[640].landmarks[1] - found[640].landmarks[0])))

    def disagreement(estimator):
        refined = {s: estimator.refine(picture, [d])[0].landmarks for s, d in found.items()}
        return max(np.abs(refined[s] - refined[640]).max() for s in (160, 320)) / eye

    assert disagreement(thrice) < 0.5 * disagreement(once)
    landmarker = YuNetDetector(str(yunet_model), max_side=CROP_DETECT_MAX_SIDE)
    twice = refine_detection(refine_detection(found[320], picture, landmarker, once.contract), picture, landmarker,
                             once.contract)
    (refined,) = Estimator(detector=str(yunet_model), refine_landmarks=True, refine_passes=2).refine(picture, [found[320]])
    assert np.allclose(refined.landmarks, twice.landmarks)
    with pytest.raises(ValueError, match="refine_passes"):
        Estimator(detector=None, refine_passes=0)


def test_estimator_refines_landmarks_only_when_asked(yunet_model, photos_dir):
    from agegender.edge.detectors import CROP_DETECT_MAX_SIDE, Detection, YuNetDetector, refine_detection
    from agegender.edge.estimator import Estimator
    from agegender.edge.images import read_image

    picture = read_image(str(photos_dir / "astronaut.png"))
    plain = Estimator(detector=str(yunet_model))
    refining = Estimator(detector=str(yunet_model), refine_landmarks=True)
    (detected,) = plain.detect(picture)
    assert plain.refine(picture, [detected]) == [detected]
    boxed = Detection(detected.box, 0.9)  # a box detector's face (Haar): nothing to refine
    assert refining.refine(picture, [boxed]) == [boxed] and refining.refine(picture, []) == []
    (refined,) = refining.refine(picture, [detected])
    landmarker = YuNetDetector(str(yunet_model), max_side=CROP_DETECT_MAX_SIDE)
    assert np.allclose(refined.landmarks, refine_detection(detected, picture, landmarker, refining.contract).landmarks)
    (face,) = refining.predict(picture)
    assert set(refining.timings) == {"detect", "align", "infer"}  # refining counts as aligning
    (expected,) = refining.estimate(picture, [refined])
    assert face.age == pytest.approx(expected.age, abs=1e-4) and face.gender == expected.gender
    assert face.quality == expected.quality  # the pose is read from the refined landmarks
    from agegender.edge.video import VideoEstimator

    (tracked,) = VideoEstimator(refining).process(picture)  # video mode refines before each estimate
    assert tracked.age == pytest.approx(expected.age, abs=1e-3)


def test_predict_refines_landmarks_by_default_and_run_does_not():
    from agegender.edge.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["predict", "x.jpg"]).refine_landmarks is True
    assert parser.parse_args(["predict", "x.jpg", "--no-refine-landmarks"]).refine_landmarks is False
    assert parser.parse_args(["run"]).refine_landmarks is False
    assert parser.parse_args(["run", "--refine-landmarks"]).refine_landmarks is True
