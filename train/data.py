"""Reading labelled face datasets: UTKFace folders or CSV files, and their splits.

UTKFace names its files ``age_gender_race_datetime.jpg.chip.jpg`` (gender 0 male,
1 female; race 0-4 White, Black, Asian, Indian, Others). A few names in the public
release are malformed; we parse what can be parsed, skip the rest and count them.
A CSV (``file,age,gender[,race]``, paths relative to the CSV) lets users bring any
other data.

The train/val/test split is a pure function of the file name (a hash), written to
split files shipped in the package so every reported number names its split.
Pure python + numpy + OpenCV: no TensorFlow here.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import logging
import os
import re
from importlib import resources
from pathlib import Path
from typing import Iterable, Optional

from agegender.edge.errors import AgeGenderError

log = logging.getLogger(__name__)

RACES = ("White", "Black", "Asian", "Indian", "Others")
GENDERS = ("male", "female")
MAX_AGE = 116  # oldest label in UTKFace; beyond that a label is an error
SPLITS = ("train", "val", "test")
DEFAULT_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)

# Magic numbers of the image formats we accept (by content, not by extension).
_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclasses.dataclass(frozen=True)
class FaceRecord:
    """One labelled face image."""

    path: str
    age: int
    gender: int  # 0 male, 1 female
    race: Optional[int] = None  # 0..4, None when unknown
    dataset: str = ""  # the DataSource name it came from ("utkface", "aaf", ...)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclasses.dataclass
class ReadReport:
    """What a dataset reader kept and what it skipped, and why."""

    kept: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: dict = dataclasses.field(default_factory=dict)

    def skip(self, reason: str, item: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, item)

    def summary(self) -> str:
        if not self.skipped:
            return f"{self.kept} images kept, none skipped"
        parts = ", ".join(f"{n} {reason} (e.g. {self.examples[reason]!r})"
                          for reason, n in self.skipped.most_common())
        return f"{self.kept} images kept, {sum(self.skipped.values())} skipped: {parts}"


class DatasetError(AgeGenderError):
    """A dataset that cannot be used at all (missing folder, nothing usable)."""


_NAME_RE = re.compile(r"^\s*(\d+)_(\d+)(?:_(\d+))?(?:_|\s|\.|$)")


def parse_utkface_name(name: str) -> Optional[tuple[int, int, Optional[int]]]:
    """(age, gender, race) from a UTKFace file name; race None when missing; None if unusable.

    >>> parse_utkface_name("24_0_1_20170116220224657 .jpg.chip.jpg")
    (24, 0, 1)
    >>> parse_utkface_name("39_1_20170116174525125.jpg.chip.jpg")  # race missing
    (39, 1, None)
    """
    base = os.path.basename(name)
    m = _NAME_RE.match(base)
    if not m:
        return None
    age, gender = int(m.group(1)), int(m.group(2))
    race_field = m.group(3)
    race = None
    if race_field is not None:
        if len(race_field) == 1 and int(race_field) < len(RACES):
            race = int(race_field)
        elif len(race_field) > 2:
            race = None  # a datetime stamp in the race slot: the race field is missing
        else:
            return None
    if not 0 <= age <= MAX_AGE or gender not in (0, 1):
        return None
    return age, gender, race


def sniff_image_format(path: str) -> Optional[str]:
    """'jpeg'/'png'/'bmp' from the file's first bytes, None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def is_truncated(path: str, kind: str) -> bool:
    """Cheap end-of-file check: a JPEG must end with EOI, a PNG with IEND."""
    try:
        size = os.path.getsize(path)
        if size < 32:
            return True
        with open(path, "rb") as f:
            f.seek(max(0, size - 16))
            tail = f.read()
    except OSError:
        return True
    if kind == "jpeg":
        return b"\xff\xd9" not in tail
    if kind == "png":
        return b"IEND" not in tail
    return False


def _check_image(path: str, report: ReadReport) -> bool:
    kind = sniff_image_format(path)
    if kind is None:
        report.skip("not an image (content)", os.path.basename(path))
        return False
    if is_truncated(path, kind):
        report.skip("truncated image", os.path.basename(path))
        return False
    return True


def read_utkface_dir(folder: str, check_content: bool = True) -> tuple[list[FaceRecord], ReadReport]:
    """All usable labelled images of a UTKFace-style folder (labels from names), sorted by name."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"data folder not found: {folder}")
    report = ReadReport()
    records = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_file():
            continue
        labels = parse_utkface_name(entry.name)
        if labels is None:
            report.skip("unparseable name", entry.name)
            continue
        if check_content and not _check_image(entry.path, report):
            continue
        age, gender, race = labels
        records.append(FaceRecord(entry.path, age, gender, race))
    report.kept = len(records)
    log.info("%s: %s", folder, report.summary())
    return records, report


def read_csv(csv_path: str, check_content: bool = True) -> tuple[list[FaceRecord], ReadReport]:
    """Labelled images from a CSV ``file,age,gender[,race]`` (paths relative to the CSV)."""
    if not os.path.isfile(csv_path):
        raise DatasetError(f"CSV file not found: {csv_path}")
    base = os.path.dirname(os.path.abspath(csv_path))
    report = ReadReport()
    records = []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file", "age", "gender"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{csv_path}: missing column(s) {sorted(missing)}; "
                               "expected a header file,age,gender[,race]")
        for line_no, row in enumerate(reader, start=2):
            where = f"line {line_no}"
            try:
                age = int(float(row["age"]))
                gender = int(float(row["gender"]))
                race_text = (row.get("race") or "").strip()
                race = int(race_text) if race_text else None
            except (TypeError, ValueError):
                report.skip("bad row (not numbers)", where)
                continue
            if not 0 <= age <= MAX_AGE or gender not in (0, 1) or (
                    race is not None and not 0 <= race < len(RACES)):
                report.skip("label out of range", where)
                continue
            path = os.path.join(base, (row["file"] or "").strip())
            if not os.path.isfile(path):
                report.skip("file not found", where)
                continue
            if check_content and not _check_image(path, report):
                continue
            records.append(FaceRecord(path, age, gender, race))
    report.kept = len(records)
    log.info("%s: %s", csv_path, report.summary())
    return records, report


def read_dataset(source: str, check_content: bool = True) -> tuple[list[FaceRecord], ReadReport]:
    """A UTKFace folder or a CSV file; refuses clearly when nothing usable is left."""
    if source.lower().endswith(".csv"):
        records, report = read_csv(source, check_content)
    else:
        records, report = read_utkface_dir(source, check_content)
    if not records:
        raise DatasetError(f"no usable labelled images in {source} ({report.summary()})")
    return records, report


# --- several datasets ----------------------------------------------------------

# What a model card says about each dataset we know; others are "licence unknown".
KNOWN_DATASETS = {
    "utkface": {"title": "UTKFace (Zhang, Song, Qi, CVPR 2017)",
                "licence": "non-commercial research use only"},
    "aaf": {"title": "All-Age-Faces (Cheng et al., Tsinghua Science and Technology 24(3), 2019)",
            "licence": "no licence stated; research use only, cite the authors"},
}


@dataclasses.dataclass(frozen=True)
class DataSource:
    """One labelled dataset given to training or evaluation, with its split files and weight.

    Written on the command line as ``[NAME=]PATH``: a UTKFace folder or a CSV. Without a
    name, the folder's name (for a CSV, its folder's name) is used, lower-cased: the
    shared ``data/utkface`` is "utkface", ``data/aaf/labels.csv`` is "aaf". Its split
    files are ``train/splits/NAME/`` as shipped, unless ``split_dir`` says otherwise.
    """

    name: str
    path: str
    split_dir: Optional[str] = None
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str, split_dir: Optional[str] = None, weight: float = 1.0) -> "DataSource":
        name, sep, path = text.partition("=")
        if not sep or os.path.exists(text) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            name, path = "", text
        return cls(name or dataset_name_of(path), path, split_dir, weight)

    def splits_folder(self) -> str:
        return self.split_dir or shipped_split_dir(self.name)

    def describe(self) -> dict:
        known = KNOWN_DATASETS.get(self.name, {})
        return {"name": self.name, "title": known.get("title", self.name),
                "licence": known.get("licence", "unknown: check the dataset's terms"),
                "split_files": (self.split_dir if self.split_dir else f"agegender.train/splits/{self.name} (shipped)"),
                "weight": self.weight}


def data_sources(data, split_dir: Optional[str] = None, weights: Optional[dict] = None) -> list[DataSource]:
    """DataSources from one ``[NAME=]PATH`` or several, as training and evaluation take them.

    ``split_dir`` applies when there is one dataset; one unnamed dataset without shipped split files
    of its own is taken as a UTKFace folder (the shipped UTKFace split), as before several datasets.
    ``weights`` ({name: share of the draws}) must name datasets that are there."""
    items = [data] if isinstance(data, str) else list(data)
    sources = [DataSource.parse(item, split_dir if len(items) == 1 else None) for item in items]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise DatasetError(f"two datasets share a name ({', '.join(names)}): name them with --data NAME=PATH")
    if len(sources) == 1 and not split_dir and names[0] not in shipped_split_names():
        sources[0] = dataclasses.replace(sources[0], name="utkface")
    weights = weights or {}
    unknown = set(weights) - {s.name for s in sources}
    if unknown:
        raise DatasetError(f"--data-weight names {', '.join(sorted(unknown))}, which is not among the datasets "
                           f"({', '.join(s.name for s in sources)})")
    return [dataclasses.replace(s, weight=float(weights.get(s.name, 1.0))) for s in sources]


def dataset_name_of(path: str) -> str:
    """'utkface' for .../UTKFace/, 'aaf' for .../aaf/labels.csv."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path) if path.lower().endswith(".csv") else path
    return re.sub(r"[^a-z0-9_-]", "", os.path.basename(folder.rstrip(os.sep)).lower()) or "data"


def read_source(source: DataSource, check_content: bool = True) -> tuple[list[FaceRecord], ReadReport]:
    """The records of one source, each tagged with the source's name."""
    records, report = read_dataset(source.path, check_content)
    return [dataclasses.replace(r, dataset=source.name) for r in records], report


def select_source_split(records: list[FaceRecord], split: str, source: DataSource) -> list[FaceRecord]:
    """One split of one source's records, by its own split files."""
    if split != "all" and source.split_dir is None and not os.path.isdir(source.splits_folder()):
        raise DatasetError(f"no shipped split files for dataset {source.name!r}: pass --split-dir "
                           f"or name it as one of {sorted(shipped_split_names())} (NAME=PATH)")
    return select_split(records, split, source.splits_folder())


def shipped_split_names() -> list[str]:
    root = resources.files("agegender.train").joinpath("splits")
    return sorted(p.name for p in root.iterdir() if p.is_dir())


# --- splits ------------------------------------------------------------------

def split_of(name: str, fractions=DEFAULT_SPLIT_FRACTIONS) -> str:
    """Deterministic split of a file name, from a hash of the name alone."""
    digest = hashlib.sha1(os.path.basename(name).encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2 ** 64
    edge = 0.0
    for split, frac in zip(SPLITS, fractions):
        edge += frac
        if u < edge:
            return split
    return SPLITS[-1]


def make_splits(names: Iterable[str], fractions=DEFAULT_SPLIT_FRACTIONS) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for name in sorted(set(os.path.basename(n) for n in names)):
        out[split_of(name, fractions)].append(name)
    return out


def write_split_files(splits: dict[str, list[str]], folder: str) -> None:
    from agegender.edge.files import atomic_write_bytes

    os.makedirs(folder, exist_ok=True)
    for split, names in splits.items():
        atomic_write_bytes(os.path.join(folder, f"{split}.txt"), "".join(n + "\n" for n in sorted(names)).encode())


def shipped_split_dir(dataset: str = "utkface") -> str:
    """Folder of the split files shipped with the package."""
    return str(resources.files("agegender.train").joinpath("splits", dataset))


def read_split_names(split: str, split_dir: Optional[str] = None) -> set[str]:
    split_dir = split_dir or shipped_split_dir()
    path = os.path.join(split_dir, f"{split}.txt")
    if not os.path.isfile(path):
        raise DatasetError(f"split file not found: {path}")
    with open(path) as f:
        return {line.strip() for line in f if line.strip()}


def select_split(records: list[FaceRecord], split: str, split_dir: Optional[str] = None) -> list[FaceRecord]:
    """Records of one split (``all``: every record)."""
    if split == "all":
        return list(records)
    names = read_split_names(split, split_dir)
    chosen = [r for r in records if r.name in names]
    if not chosen:
        raise DatasetError(
            f"none of the {len(records)} images is in the {split!r} split "
            f"({split_dir or shipped_split_dir()}); use --split all for data without a split file")
    return chosen


def stratified_sample(records: list[FaceRecord], n: int, seed: int = 0) -> list[FaceRecord]:
    """About n records spread evenly over age bands (5-year bins) and genders."""
    import random

    rng = random.Random(seed)
    strata: dict[tuple[int, int], list[FaceRecord]] = collections.defaultdict(list)
    for r in records:
        strata[(min(r.age, 100) // 5, r.gender)].append(r)
    keys = sorted(strata)
    for k in keys:
        rng.shuffle(strata[k])
    chosen: list[FaceRecord] = []
    while len(chosen) < n and any(strata[k] for k in keys):
        order = list(keys)
        rng.shuffle(order)  # each round visits the strata in a new order, so a small n spans every age
        for k in order:
            if strata[k] and len(chosen) < n:
                chosen.append(strata[k].pop())
    return sorted(chosen, key=lambda r: r.name)
