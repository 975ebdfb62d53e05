"""Shared fixtures: where the project's data lives, found without hard-coding it.

The data (UTKFace crops, backbone weights, the YuNet detector, sample photos) is
looked up in $AGEGENDER_SHARED, else in ../shared beside the repository (where CI
and developers have it). Tests that need it skip with the reason when it is absent.
"""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("AGEGENDER_SHARED", REPO.parent / "shared"))


def _need(relative: str) -> Path:
    path = shared_root() / relative
    if not path.exists():
        pytest.skip(f"{relative} not found under {shared_root()} (set AGEGENDER_SHARED to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def utkface_dir() -> Path:
    return _need("data/utkface")


@pytest.fixture(scope="session")
def mobilenet_weights() -> Path:
    return _need("data/weights/mobilenet_v2_1.0_224_no_top.h5")


@pytest.fixture(scope="session")
def yunet_model() -> Path:
    return _need("data/detectors/face_detection_yunet_2023mar.onnx")


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    return _need("data/photos")


@pytest.fixture(scope="session")
def utkface_sample(utkface_dir, tmp_path_factory) -> Path:
    """A small UTKFace-style folder (symlinks to 128 real crops spread over ages, genders and
    splits), so tests read real faces without scanning 21,648 files."""
    from agegender.train import data

    names = sorted(os.listdir(utkface_dir))
    valid = [n for n in names if data.parse_utkface_name(n) and n.endswith(".jpg.chip.jpg")]
    by_split = {s: [n for n in valid if data.split_of(n) == s] for s in data.SPLITS}
    chosen = []
    for split, n in (("train", 96), ("val", 16), ("test", 16)):
        records = [data.FaceRecord(name, *data.parse_utkface_name(name)) for name in by_split[split]]
        chosen += [r.path for r in data.stratified_sample(records, n, seed=0)]
    folder = tmp_path_factory.mktemp("utkface_sample")
    for n in chosen:
        (folder / n).symlink_to(utkface_dir / n)
    return folder


def tf_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None


needs_tf = pytest.mark.skipif(not tf_available(), reason="TensorFlow/Keras not installed (pip install '.[train]')")
