
import numpy as np
import pytest

from agegender.train import data


@pytest.mark.parametrize("name,expected", [
    ("25_1_3_20170104232412873.jpg.chip.jpg", (25, 1, 3)),
    ("1_0_0_20161219140623097.jpg.chip.jpg", (1, 0, 0)),
    ("116_1_0_20170120134921760.jpg.chip.jpg", (116, 1, 0)),
    # malformed exactly as in the public release
    ("24_0_1_20170116220224657 .jpg.chip.jpg", (24, 0, 1)),  # space before .jpg
    ("39_1_20170116174525125.jpg.chip.jpg", (39, 1, None)),  # race field missing
    ("55_0_0_20170116232725357jpg.chip.jpg", (55, 0, 0)),  # missing dot
])
def test_parse_utkface_name(name, expected):
    assert data.parse_utkface_name(name) == expected


@pytest.mark.parametrize("name", [
    "abc.jpg", "25.jpg", "_1_2_3.jpg", "250_0_0_2017.jpg",  # age out of range
    "25_7_0_2017.jpg",  # gender 7
    "25_1_9_2017.jpg",  # race 9
    "", "README.md",
])
def test_parse_utkface_name_rejects(name):
    assert data.parse_utkface_name(name) is None


def _jpeg_bytes(value=128, size=32):
    import cv2

    ok, buf = cv2.imencode(".jpg", np.full((size, size, 3), value, np.uint8))
    assert ok
    return buf.tobytes()


def test_read_utkface_dir_skips_and_counts(tmp_path):
    good = _jpeg_bytes()
    (tmp_path / "30_1_2_2017.jpg.chip.jpg").write_bytes(good)
    (tmp_path / "31_0_0_2017 .jpg.chip.jpg").write_bytes(good)
    (tmp_path / "bad_name.jpg").write_bytes(good)  # unparseable
    (tmp_path / "40_0_0_2017.jpg.chip.jpg").write_bytes(b"this is not a picture")  # not an image
    (tmp_path / "41_0_0_2017.jpg.chip.jpg").write_bytes(good[: len(good) // 2])  # truncated
    (tmp_path / "42_0_0_2017.png").write_bytes(good)  # a JPEG named .png: accepted by content
    (tmp_path / "sub").mkdir()
    records, report = data.read_utkface_dir(str(tmp_path))
    assert sorted(r.age for r in records) == [30, 31, 42]
    assert report.kept == 3
    assert report.skipped == {"unparseable name": 1, "not an image (content)": 1, "truncated image": 1}
    assert "3 skipped" in report.summary()


def test_read_csv_bad_rows(tmp_path):
    good = _jpeg_bytes()
    (tmp_path / "a.jpg").write_bytes(good)
    (tmp_path / "b.jpg").write_bytes(good)
    (tmp_path / "faces.csv").write_text(
        "file,age,gender,race\n"
        "a.jpg,30,1,2\n"
        "b.jpg,44,0,\n"
        "a.jpg,250,0,0\n"  # age out of range
        "a.jpg,30,7,0\n"  # gender out of range
        "a.jpg,thirty,0,0\n"  # not a number
        "missing.jpg,30,0,0\n")
    records, report = data.read_csv(str(tmp_path / "faces.csv"))
    assert [(r.age, r.gender, r.race) for r in records] == [(30, 1, 2), (44, 0, None)]
    assert report.skipped == {"label out of range": 2, "bad row (not numbers)": 1, "file not found": 1}


def test_read_dataset_refuses_empty_and_missing(tmp_path):
    with pytest.raises(data.DatasetError, match="not found"):
        data.read_dataset(str(tmp_path / "nope"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(data.DatasetError, match="no usable labelled images"):
        data.read_dataset(str(tmp_path))
    (tmp_path / "x.csv").write_text("path,label\n")
    with pytest.raises(data.DatasetError, match="missing column"):
        data.read_dataset(str(tmp_path / "x.csv"))


def test_split_is_deterministic_and_disjoint():
    names = [f"{a}_{g}_{r}_2017{i:09d}.jpg.chip.jpg" for i, (a, g, r) in
             enumerate((a % 90, a % 2, a % 5) for a in range(3000))]
    first, second = data.make_splits(names), data.make_splits(list(reversed(names)))
    assert first == second
    sets = {k: set(v) for k, v in first.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert sum(len(v) for v in sets.values()) == len(names)
    assert 0.75 < len(sets["train"]) / len(names) < 0.85
    assert all(data.split_of(n) == "test" for n in first["test"])


def test_shipped_split_files_are_disjoint_and_match_the_hash():
    splits = {s: data.read_split_names(s) for s in data.SPLITS}
    assert len(splits["train"]) > 15000 and len(splits["test"]) > 1500
    assert not (splits["train"] & splits["test"]) and not (splits["train"] & splits["val"])
    assert not (splits["val"] & splits["test"])
    for split, names in splits.items():
        assert all(data.split_of(n) == split for n in sorted(names)[:500])


def test_select_split_and_all(tmp_path):
    recs = [data.FaceRecord(str(tmp_path / n), 20, 0) for n in ("x1.jpg", "x2.jpg")]
    assert data.select_split(recs, "all") == recs
    with pytest.raises(data.DatasetError, match="--split all"):
        data.select_split(recs, "test")


def test_stratified_sample_spans_ages():
    recs = [data.FaceRecord(f"{i}.jpg", age, i % 2) for i, age in enumerate(list(range(0, 100)) * 5)]
    sample = data.stratified_sample(recs, 100)
    assert len(sample) == 100
    ages = np.array([r.age for r in sample])
    assert ages.min() < 5 and ages.max() >= 95
    assert abs(sum(r.gender for r in sample) - 50) <= 10


def test_real_utkface_folder_reads(utkface_dir):
    records, report = data.read_utkface_dir(str(utkface_dir), check_content=False)
    assert len(records) > 20000
    assert all(0 <= r.age <= data.MAX_AGE and r.gender in (0, 1) for r in records)
    assert any(r.race is None for r in records)  # the malformed names without a race field
