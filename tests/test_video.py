"""Video mode (agegender.edge.video): less work per frame, ids through crossings, occlusion and re-entry.

The tracking trials are synthetic videos whose truth is known (agegender.edge.synthetic_video):
UTKFace test-split faces moving over a background, crossing paths, hidden, leaving and coming back.
"""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from agegender.edge import synthetic_video as SV
from agegender.edge.detectors import Detection
from agegender.edge.video import VideoOptions, VideoTrack, match_tracks, moved_outside, path_velocity


# --- pure parts, no data needed -------------------------------------------------------------

def test_options_refuse_what_cannot_work():
    for bad in (dict(detect_every=0), dict(roi_scale=1.0), dict(memory=0), dict(track_face_px=8)):
        with pytest.raises(ValueError):
            VideoOptions(**bad)


def test_motion_outside_the_tracked_faces_is_seen_and_inside_is_not():
    before = np.full((60, 80), 100, np.int16)
    inside = before.copy()
    inside[20:30, 30:40] = 200  # where the tracked face is (frame 640x480: box 240..320, 160..240)
    box = (250, 170, 60, 60)
    assert not moved_outside(before, inside, [box], (480, 640), threshold=12, margin=2.0)
    outside = before.copy()
    outside[2:6, 70:76] = 200  # a face walking in at the top right
    assert moved_outside(before, outside, [box], (480, 640), threshold=12, margin=2.0)
    noisy = before + np.random.default_rng(0).integers(-5, 6, before.shape)
    assert not moved_outside(before, noisy, [box], (480, 640), threshold=12, margin=2.0)


def test_velocity_from_the_last_clear_frames():
    path = [(i, np.array([10.0 + 3 * i, 50.0])) for i in range(6)]
    assert np.allclose(path_velocity(path), [3, 0])
    assert not path_velocity(path[:2]).any()  # too short to tell


def test_matching_keeps_crossing_faces_apart_by_their_look():
    look_a, look_b = np.eye(4)[0], np.eye(4)[1]
    a = VideoTrack(1, Detection((100, 100, 80, 80), 0.9), look_a, last_seen=9, velocity=np.array([5.0, 0]))
    b = VideoTrack(2, Detection((120, 100, 80, 80), 0.9), look_b, last_seen=9, velocity=np.array([-5.0, 0]))
    # both predicted boxes overlap both detections: the look decides
    detections = [Detection((112, 100, 80, 80), 0.9), Detection((108, 100, 80, 80), 0.9)]
    matched, unmatched = match_tracks([a, b], detections, [look_b, look_a], 10, reid_similarity=0.89)
    assert matched == {0: b, 1: a} and unmatched == []
    # a face far away that looks like a remembered track gets its id back; a stranger does not
    gone = VideoTrack(3, Detection((500, 300, 80, 80), 0.9), look_a, last_seen=-100)
    far = [Detection((20, 20, 90, 90), 0.9), Detection((300, 20, 90, 90), 0.9)]
    matched, unmatched = match_tracks([gone], far, [look_a, look_b], 10, reid_similarity=0.89)
    assert matched == {0: gone} and unmatched == [1]


def _faces_of_noise(n):
    rng = np.random.default_rng(1)
    return [SV.ActorFace(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8), age=20 + 10 * k, female=bool(k % 2))
            for k in range(n)]


def test_synthetic_truth_knows_who_is_in_view_and_scoring_counts_switches():
    video = SV.crossing(_faces_of_noise(2), frames=60)
    truths = [t for _, t in video]
    assert all(len(t) == 2 for t in truths[:10])  # both faces present at first
    assert any(len(t) == 1 for t in truths)  # one hides the other while they cross
    # a pipeline that swaps the two ids halfway, and one that keeps them
    def predictions(swap_at):
        out = []
        for i, truth in enumerate(truths):
            faces = []
            for t in truth:
                ident = t.actor + 1 if i < swap_at else 2 - t.actor
                faces.append(SV.PredictedFace(t.square, t.age + 1.0, t.female, ident))
            out.append(faces)
        return out
    kept, swapped = SV.score_video(predictions(10 ** 6), truths), SV.score_video(predictions(30), truths)
    assert kept["id_switches"] == 0 and swapped["id_switches"] == 2
    assert kept["age_mae"] == pytest.approx(1.0) and kept["gender_accuracy"] == 1.0
    assert kept["found_fraction"] == 1.0 and kept["false_faces"] == 0
    assert kept["first_estimate_delay"] == {"0": 0, "1": 0}


# --- with the shared data: the detector and real faces -----------------------------------------

@pytest.fixture(scope="module")
def actors(utkface_dir):
    from agegender.edge.images import read_canonical
    from agegender.train import data

    records, _ = data.read_dataset(str(utkface_dir), check_content=False)
    test = [r for r in data.select_split(records, "test") if 3 <= r.age < 80]
    return [SV.ActorFace(read_canonical(r.path), r.age, bool(r.gender)) for r in data.stratified_sample(test, 8, seed=5)]


@pytest.fixture(scope="module")
def estimator(yunet_model):
    from agegender.edge.estimator import Estimator

    return Estimator(detector=str(yunet_model), threads=1)


def run_video(estimator, video, options=None):
    from agegender.edge.video import VideoEstimator

    stream = VideoEstimator(estimator, options)
    predictions, truths = [], []
    for frame, truth in video:
        faces = stream.process(frame)
        predictions.append([SV.PredictedFace(f.box, f.age, f.female_prob >= 0.5, f.id) for f in faces])
        truths.append(truth)
    return SV.score_video(predictions, truths), stream


@pytest.mark.parametrize("scene", ["crossing", "crossing-offset", "re-entry", "occlusion"])
def test_ids_survive_crossings_occlusion_and_re_entry(actors, estimator, scene):
    video = {v.name: v for v in SV.standard_scenes(actors)}[scene]
    score, _ = run_video(estimator, video)
    assert score["id_switches"] == 0, score
    assert score["found_fraction"] >= 0.95 and score["false_faces"] <= 2, score


def test_a_face_stepping_in_is_estimated_within_two_frames(actors, estimator):
    score, _ = run_video(estimator, SV.entering(actors[1:3], appears_at=30))
    assert score["first_estimate_delay"]["1"] is not None and score["first_estimate_delay"]["1"] <= 1, score
    assert score["first_estimate_delay"]["0"] == 0


def test_video_mode_does_less_work_and_answers_like_the_still_path(actors, estimator):
    video = SV.moving(actors[2:], 1, frames=90)
    score, stream = run_video(estimator, video)
    assert stream.counts["full_detections"] <= 90 // 3 and stream.counts["estimates"] <= 90 // 5, stream.counts
    still = []
    for frame, truth in video:
        still.append([SV.PredictedFace(f.box, f.age, f.female_prob >= 0.5) for f in estimator.predict(frame)])
    still_score = SV.score_video(still, [t for _, t in video])
    assert score["found_fraction"] == still_score["found_fraction"] == 1.0
    assert score["age_mae"] <= still_score["age_mae"] + 1.0  # one face: fewer estimates, averaged
    assert score["gender_accuracy"] >= still_score["gender_accuracy"] - 0.05


def test_a_turn_to_profile_and_back_keeps_gender_and_age_in_video_mode(utkface_dir, estimator):
    """As test_wild's still-path test: frontal, profiles (other people's), frontal again."""
    from agegender.edge.images import read_canonical
    from agegender.edge.video import VideoEstimator
    from edge_helpers import paste_face
    from test_wild import FRONTAL_WOMAN, TURNED_AWAY

    def frame(name):
        crop = cv2.copyMakeBorder(read_canonical(str(utkface_dir / name)), 40, 40, 40, 40, cv2.BORDER_REFLECT_101)
        return paste_face(crop, center=(320, 240), scale=1.2)[0]

    sequence = [frame(FRONTAL_WOMAN)] * 6 + [frame(n) for n in TURNED_AWAY * 5] + [frame(FRONTAL_WOMAN)] * 4
    stream = VideoEstimator(estimator)
    faces = [stream.process(image) for image in sequence]
    assert all(len(f) == 1 for f in faces)
    faces = [f[0] for f in faces]
    assert len({f.id for f in faces}) == 1
    assert {f.gender for f in faces} == {faces[5].gender}
    assert max(abs(f.age - faces[5].age) for f in faces[5:]) <= 1.0


def test_run_uses_video_mode_for_videos_and_keeps_the_old_path_as_an_option(actors, yunet_model, tmp_path):
    video = SV.crossing(actors[:2], frames=60)
    path = tmp_path / "crossing.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, video.size)
    for frame, _ in video:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    base = [sys.executable, "-m", "agegender.edge.cli", "run", "--source", str(path), "--detector-model",
            str(yunet_model), "-q"]
    for mode in ("video", "frames"):
        out = tmp_path / f"{mode}.jsonl"
        done = subprocess.run(base + ["--mode", mode, "--json", str(out)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(records) == 60 and all(f["id"] is not None for r in records for f in r["faces"])
        assert {f["id"] for f in records[0]["faces"]} == {1, 2}
    done = subprocess.run(base + ["--roi-scale", "1.0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "agegender run: video mode: roi_scale must be at least 1.2 face boxes"]


@pytest.fixture(scope="module")
def photo_actors(photos_dir, estimator):
    """Faces cut from the project's photos (real photographs, not dataset crops), framed like the
    training crops; their ages are unknown, so only the ids are scored with them."""
    from agegender.edge.images import read_image

    actors = []
    for name in ("Tom_Hanks_54745.png", "alex_lacamoire1.jpg", "biden.jpg", "obama.jpg"):
        image = read_image(str(photos_dir / name))
        x, y, w, h = estimator.detect(image)[0].box
        side = 1.6 * max(w, h)
        square = np.float32([[200 / side, 0, 100 - 200 / side * (x + w / 2)],
                             [0, 200 / side, 100 - 200 / side * (y + h / 2)]])
        crop = cv2.warpAffine(image, square, (200, 200), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        actors.append(SV.ActorFace(crop, age=0.0, female=False, name=name))
    return actors


@pytest.mark.parametrize("scene", ["crossing", "re-entry"])
def test_ids_survive_with_faces_from_real_photos(photo_actors, actors, estimator, scene):
    if scene == "crossing":
        video = SV.crossing(photo_actors[:2])
    else:
        video = SV.reentry([photo_actors[2], actors[0]])
    score, _ = run_video(estimator, video)
    assert score["id_switches"] == 0, score
    assert score["found_fraction"] >= 0.95 and score["false_faces"] <= 2, score
