"""The model card: the contract between a model file and everything that runs it.

Training writes one beside ``model.keras`` (``model.json``, or ``NAME.keras.json``), export
writes one beside every exported file (``NAME.tflite.json``), and evaluation, export,
calibration, the benchmark and the runtime read it: what a model expects (input size, colour
order, how faces are aligned, the landmark template, the box margin, the detector that measured
them), what it predicts (task, heads, age groups) and where it came from (datasets, licences,
the file's sha256) are read from the card, never rebuilt from defaults.

    card = ModelCard.load_for("models/agegender_mnv2_128_int8.tflite")
    card.contract.size, card.alignment, card.task, card.groups.names
    card.verify_file("models/agegender_mnv2_128_int8.tflite")   # sha256 against the card

Schema 2 (this module). Schema-1 cards (written before 2026-11-23) have no ``alignment``
field: they load only after it is added (``"alignment": "landmarks"`` or ``"crop"``); the error
says so. Pure Python + numpy: the edge runtime reads cards without TensorFlow.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional

from agegender.edge.contract import AGE_BINS, AgeGroups, InputContract
from agegender.edge.errors import AgeGenderError
from agegender.edge.files import atomic_write_bytes, sha256_file

SCHEMA_VERSION = 2
# How a face becomes the model's input:
#   "landmarks": warped by its 5 landmarks onto the template (camera faces, and training crops re-aligned
#                by their own landmarks); a crop given as it is gets its landmarks found first.
#   "crop":      the UTKFace-style canonical crop as it is (camera faces by their landmarks, as ever).
ALIGNMENTS = ("landmarks", "crop")
# What each task predicts: the model's output heads, by name.
TASK_HEADS = {"multi": ("age", "gender"), "age": ("age",), "gender": ("gender",), "group": ("group",)}
HEAD_DESCRIPTIONS = {
    "age": f"float32 [N, {AGE_BINS}]: probability of each age 0..{AGE_BINS - 1}; age = expectation, "
           "spread = standard deviation (renormalise first: quantized outputs may not sum to 1)",
    "gender": "float32 [N, 1]: probability that the face is female (UTKFace gender 1)",
    "group": "float32 [N, G]: probability of each age group, in the card's age-group order",
}
MAX_CANONICAL = 1024  # px: a canonical crop beyond this is a corrupt card, not a model
MAX_INPUT = 1024


class ModelCardError(AgeGenderError):
    """A card that is missing, unreadable or does not fit its model."""


@dataclasses.dataclass
class ModelCard:
    contract: InputContract
    alignment: str
    task: str
    heads: tuple[str, ...]
    input_dtype: str = "float32"
    detector: dict = dataclasses.field(default_factory=dict)  # the detector that measured template and landmarks
    datasets: list = dataclasses.field(default_factory=list)  # [{name, title, licence, split_files, weight}]
    licence: str = ""
    file: Optional[str] = None
    format: Optional[str] = None  # keras, tflite-int8, onnx-fp32, ...
    sha256: Optional[str] = None
    size_bytes: Optional[int] = None
    extra: dict = dataclasses.field(default_factory=dict)  # metrics, training, export command, calibration ...
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        if self.alignment not in ALIGNMENTS:
            raise ModelCardError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if self.task not in TASK_HEADS:
            raise ModelCardError(f"task must be one of {sorted(TASK_HEADS)}, got {self.task!r}")
        if tuple(self.heads) != TASK_HEADS[self.task]:
            raise ModelCardError(f"a {self.task!r} model has the heads {TASK_HEADS[self.task]}, "
                                 f"the card lists {tuple(self.heads)}")
        self.heads = tuple(self.heads)

    @property
    def groups(self) -> AgeGroups:
        return self.contract.age_groups

    # --- serialisation ---------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"schema_version": self.schema_version, "name": self.file, "file": self.file, "format": self.format,
               "size_bytes": self.size_bytes, "sha256": self.sha256,
               "input": {**self.contract.to_dict(), "name": "image", "dtype": self.input_dtype},
               "alignment": self.alignment, "detector": self.detector, "task": self.task,
               "outputs": {h: HEAD_DESCRIPTIONS[h] for h in self.heads},
               "age_groups": dict(zip(self.groups.names, self.groups.lower_bounds)),
               "datasets": self.datasets, "licence": self.licence}
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, d, where: str = "model card") -> "ModelCard":
        """A validated card; ModelCardError naming the field otherwise."""
        if not isinstance(d, dict):
            raise ModelCardError(f"{where}: unreadable model card (not a JSON object)")
        version = d.get("schema_version", 1)
        if version != SCHEMA_VERSION:
            if version == 1 and "alignment" not in d:
                raise ModelCardError(
                    f"{where}: a schema-1 model card, which does not say how faces are aligned; re-export the model "
                    "with `agegender export`, or add \"alignment\": \"landmarks\" (trained on re-aligned crops) or "
                    "\"crop\" (trained on crops as given) to it")
            if not (isinstance(version, int) and version == 1):
                raise ModelCardError(f"{where}: unknown model card schema {version!r} (this agegender reads "
                                     f"{SCHEMA_VERSION}); upgrade agegender")
        try:
            inp = _field(d, "input", dict, where)
            contract = contract_from(inp, d.get("age_groups"), where)
            outputs = d.get("outputs")
            heads = tuple(outputs) if isinstance(outputs, (dict, list)) else None
            task = d.get("task") or (d.get("training") or {}).get("task")
            if task is None and heads is not None:
                task = next((t for t, h in TASK_HEADS.items() if h == heads), None)
            if heads is None and task in TASK_HEADS:
                heads = TASK_HEADS[task]
            if task is None or heads is None:
                raise ModelCardError(f"{where}: unreadable model card (no task or outputs)")
            dtype = "uint8" if inp.get("dtype") == "uint8" else "float32"
            known = {"schema_version", "name", "file", "format", "size_bytes", "sha256", "input", "alignment",
                     "detector", "task", "outputs", "age_groups", "datasets", "licence"}
            return cls(contract=contract, alignment=_field(d, "alignment", str, where), task=task, heads=heads,
                       input_dtype=dtype, detector=d.get("detector") or {}, datasets=list(d.get("datasets") or []),
                       licence=str(d.get("licence") or d.get("dataset_licence") or ""), file=d.get("file"),
                       format=d.get("format"), sha256=d.get("sha256"), size_bytes=d.get("size_bytes"),
                       extra={k: v for k, v in d.items() if k not in known})
        except ModelCardError as exc:
            if str(exc).startswith(f"{where}: "):
                raise
            raise ModelCardError(f"{where}: unreadable model card ({exc})") from None
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            raise ModelCardError(f"{where}: unreadable model card ({type(exc).__name__}: {exc})"[:300]) from None

    @classmethod
    def load(cls, path: str) -> "ModelCard":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise ModelCardError(f"{path}: model card not found") from None
        except (OSError, ValueError, RecursionError) as exc:
            raise ModelCardError(f"{path}: unreadable model card ({type(exc).__name__})") from None
        return cls.from_dict(data, path)

    @classmethod
    def load_for(cls, model_path: str) -> "ModelCard":
        """The card beside a model file: MODEL.json, or model.json in a training run folder."""
        for candidate in card_paths(model_path):
            if os.path.isfile(candidate):
                return cls.load(candidate)
        raise ModelCardError(f"{model_path}: no model card beside it ({card_paths(model_path)[0]}); a model's "
                             "card says how to feed it: export the model with `agegender export`")

    def save(self, path: str) -> str:
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n").encode())
        return path

    def for_file(self, model_path: str, fmt: str, input_dtype: Optional[str] = None, **extra) -> "ModelCard":
        """This card for another file of the same model (an export): its name, format, size and sha256."""
        return dataclasses.replace(self, file=os.path.basename(model_path), format=fmt,
                                   size_bytes=os.path.getsize(model_path), sha256=sha256_file(model_path),
                                   input_dtype=input_dtype or self.input_dtype, extra={**self.extra, **extra})

    def verify_file(self, model_path: str) -> None:
        """Refuse a file whose sha256 is not the card's (corrupt, truncated or another model)."""
        if not self.sha256:
            return
        actual = sha256_file(model_path)
        if actual != self.sha256:
            raise ModelCardError(f"{model_path}: its sha256 {actual[:16]}… is not the one its card records "
                                 f"({self.sha256[:16]}…): the file is corrupt, or the card belongs to another model")


def new_training_card(size: int, task: str, alignment: str, detector: Optional[dict] = None,
                      datasets: Optional[list] = None, licence: str = "",
                      parent: Optional[ModelCard] = None) -> ModelCard:
    """The card of a new training run: the parent model's contract when it starts from one (its template,
    margins and age groups carry over; the input size is this run's), else the project's default
    contract at this input size."""
    if parent is not None:
        contract = parent.contract.with_size(size)
        detector = detector or parent.detector
    else:
        contract = InputContract(size=size)
    return ModelCard(contract=contract, alignment=alignment, task=task, heads=TASK_HEADS[task], format="keras",
                     file="model.keras", detector=detector or {}, datasets=datasets or [], licence=licence)


def card_paths(model_path: str) -> list[str]:
    paths = [model_path + ".json"]
    if model_path.endswith(".keras"):
        paths.append(os.path.join(os.path.dirname(model_path) or ".", "model.json"))
    return paths


def _field(d: dict, key: str, kind, where: str):
    value = d.get(key)
    if not isinstance(value, kind):
        raise ModelCardError(f"{where}: unreadable model card ({key!r} missing or not a {kind.__name__})")
    return value


def _number(value, key: str, lo: float, hi: float, where: str, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi or (integer and int(value) != value):
        raise ModelCardError(f"{where}: unreadable model card ({key} = {value!r}; expected "
                             f"{'a whole number' if integer else 'a number'} in {lo}..{hi})")
    return value


def contract_from(inp: dict, groups, where: str) -> InputContract:
    """The input contract of a card's ``input`` section, every field checked for type and range."""
    size = int(_number(inp.get("size"), "input.size", 16, MAX_INPUT, where, integer=True))
    canonical = int(_number(inp.get("canonical_size"), "input.canonical_size", 16, MAX_CANONICAL, where,
                            integer=True))
    template = inp.get("template")
    if not (isinstance(template, list) and len(template) == 5 and all(
            isinstance(p, list) and len(p) == 2 for p in template)):
        raise ModelCardError(f"{where}: unreadable model card (input.template must be 5 [x, y] points)")
    points = tuple(tuple(float(_number(v, "input.template", -1.0, 2.0, where)) for v in p) for p in template)
    colour = inp.get("colour_order")
    if colour not in ("RGB", "BGR"):
        raise ModelCardError(f"{where}: unreadable model card (input.colour_order = {colour!r})")
    groups = groups if groups is not None else inp.get("age_groups")
    if not isinstance(groups, dict) or not groups:
        raise ModelCardError(f"{where}: unreadable model card (age_groups must map names to lower bounds)")
    bounds = tuple(int(_number(v, "age_groups", 0, 200, where, integer=True)) for v in groups.values())
    try:
        age_groups = AgeGroups(tuple(str(k) for k in groups), bounds)
    except ValueError as exc:
        raise ModelCardError(f"{where}: unreadable model card ({exc})") from None
    return InputContract(size=size, colour_order=colour, canonical_size=canonical, template=points,
                         box_margin=float(_number(inp.get("box_margin"), "input.box_margin", 0.5, 3.0, where)),
                         box_shift=float(_number(inp.get("box_shift"), "input.box_shift", -0.5, 0.5, where)),
                         age_groups=age_groups)
