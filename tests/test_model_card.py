"""One model object from training to the Pi (issue 12): the card is the contract.

Card round trip and validation, a tampered file refused by its checksum, every task's model
through the runtime, the same decisions in still and video mode, what the shipped models say
on fixed inputs, and imports that point one way."""
import ast
import json
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from agegender.edge.card import ModelCard, ModelCardError
from agegender.edge.zoo import default_model_path, shipped_models_dir
from edge_helpers import constant_onnx_model

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "edge" / "samples" / "astronaut.png"


def sample_rgb():
    return cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)


# --- the card ----------------------------------------------------------------------------------

def test_card_round_trip_keeps_everything():
    card = ModelCard.load_for(default_model_path())
    assert card.schema_version == 2 and card.alignment == "landmarks" and card.task == "multi"
    assert card.heads == ("age", "gender") and card.input_dtype == "uint8" and card.sha256
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again == card and again.to_dict() == card.to_dict()


def test_a_tampered_model_file_is_refused_before_it_is_run(tmp_path):
    from agegender.edge.estimator import Estimator
    from agegender.edge.model import AgeGenderModel

    model = tmp_path / "m.tflite"
    shutil.copy(default_model_path(), model)
    shutil.copy(default_model_path() + ".json", str(model) + ".json")
    assert AgeGenderModel.open(str(model)).card.task == "multi"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit flipped in the weights
    model.write_bytes(bytes(data))
    with pytest.raises(ModelCardError, match="sha256 .* is not the one its card records"):
        Estimator(model=str(model), detector=object())


@pytest.mark.parametrize("change,needle", [
    (lambda c: c["input"].update(size=float("inf")), "input.size"),
    (lambda c: c["input"].update(canonical_size=40000), "input.canonical_size"),
    (lambda c: c.update(age_groups="x"), "age_groups"),
    (lambda c: c.update(outputs=None, task=None, training={}), "no task or outputs"),
    (lambda c: c.update(input=None), "'input' missing"),
    (lambda c: c["input"].update(template=[[[[0.1]]]]), "input.template"),
    (lambda c: c.update(alignment="sideways"), "alignment must be one of"),
    (lambda c: c.update(task="group"), "heads"),
    (lambda c: c.pop("alignment") and c.pop("schema_version"), "schema-1 model card"),
    (lambda c: c.update(schema_version=99), "unknown model card schema 99"),
])
def test_garbage_cards_are_one_clear_message(change, needle):
    card = json.loads(open(default_model_path() + ".json").read())
    change(card)
    with pytest.raises(ModelCardError, match=needle.replace("(", r"\(")) as info:
        ModelCard.from_dict(json.loads(json.dumps(card)), "x.json")
    assert "\n" not in str(info.value) and str(info.value).startswith("x.json: ")


# --- every task through the runtime -----------------------------------------------------------------

def task_model(tmp_path, task: str):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    age = np.exp(-0.5 * ((np.arange(101) - 15) / 2.0) ** 2)  # a 15-year-old: a teenager by the card's groups
    heads = {"multi": {"age": age / age.sum(), "gender": [0.8]}, "age": {"age": age / age.sum()},
             "gender": {"gender": [0.8]}, "group": {"group": [0.1, 0.7, 0.1, 0.1]}}[task]
    path = constant_onnx_model(tmp_path / f"{task}.onnx", heads)
    card = json.loads(open(default_model_path() + ".json").read())
    card.update(sha256=None, format="onnx-fp32", task=task, outputs={h: "" for h in heads})
    card["input"]["dtype"] = "float32"
    Path(path + ".json").write_text(json.dumps(card))
    return path


@pytest.mark.parametrize("task", ["multi", "age", "gender", "group"])
def test_every_task_runs_through_the_runtime_still_and_video(tmp_path, task, yunet_model):
    from agegender.edge.estimator import Estimator
    from agegender.edge.runner import frame_record, smooth_faces
    from agegender.edge.sources import Frame
    from agegender.edge.tracker import IoUTracker

    estimator = Estimator(model=task_model(tmp_path, task), detector=str(yunet_model))
    still = estimator.predict(sample_rgb())
    assert len(still) == 1
    tracker = IoUTracker()
    for _ in range(3):
        video = smooth_faces(estimator.predict(sample_rgb()), tracker, estimator)
    for face in (still[0], video[0]):
        record = json.dumps(frame_record(Frame(None, 0, "x"), [face]), allow_nan=False)  # valid JSON, no NaN
        fields = json.loads(record)["faces"][0]
        has_age, has_gender = task in ("multi", "age"), task in ("multi", "gender")
        assert ("age" in fields) == has_age and ("age_std" in fields) == has_age
        assert ("gender" in fields) == has_gender and ("gender_prob" in fields) == has_gender
        if has_gender:
            assert fields["gender"] == "female" and fields["gender_prob"] == pytest.approx(0.8)
        if has_age:
            assert fields["age"] == pytest.approx(15, abs=0.1)
        assert fields.get("age_group") == (None if task == "gender" else "teenager")  # never a guess
        assert face.label() and "nan" not in face.label().lower()


def test_still_and_video_decide_the_same_group_and_gender(yunet_model):
    """The same face gets the same age group in still and video mode (one decision rule)."""
    from agegender.edge.estimator import Estimator
    from agegender.edge.postprocess import AgeGender, decode
    from agegender.edge.runner import smooth_faces
    from agegender.edge.tracker import IoUTracker

    groups = ModelCard.load_for(default_model_path()).groups
    # an age distribution whose mean is 20.5 (adult) but with most mass below 20 (teenager by mass)
    dist = np.zeros((1, 101))
    dist[0, 17], dist[0, 40] = 0.85, 0.15
    result = decode(dist, np.array([[0.3]]), groups)[0]
    assert result.age == pytest.approx(20.45) and result.age_group == "adult" and result.gender == "male"
    estimator = Estimator(detector=str(yunet_model))
    face = estimator.predict(sample_rgb())[0]
    tracked = smooth_faces([face], IoUTracker(), estimator)[0]
    assert (tracked.age_group, tracked.gender) == (face.age_group, face.gender)
    assert isinstance(result, AgeGender)


# --- what the shipped models say, pinned ------------------------------------------------------------

GOLDEN = json.loads((REPO / "tests" / "golden" / "shipped.json").read_text())
AGE_TOLERANCE, FEMALE_TOLERANCE = 1.0, 0.05  # a colour-order or alignment mistake moves one of them further


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_shipped_models_say_what_they_said(name, yunet_model, utkface_dir):
    from agegender.edge.estimator import Estimator
    from agegender.edge.files import sha256_file
    from agegender.edge.images import read_canonical

    if name.endswith(".onnx"):
        pytest.importorskip("onnxruntime")
    path = os.path.join(shipped_models_dir(), name)
    expected = GOLDEN[name]
    assert sha256_file(path) == expected["sha256"], (
        f"{name} changed: if on purpose, regenerate with python tests/golden/make_golden.py")
    estimator = Estimator(model=path, detector=str(yunet_model), threads=1)
    said, as_bgr, not_realigned = {}, {}, {}
    face = estimator.predict(sample_rgb())[0]
    said["sample"] = (face.age, face.female_prob)
    wrong = estimator.predict(np.ascontiguousarray(sample_rgb()[:, :, ::-1]))[0]
    as_bgr["sample"] = (wrong.age, wrong.female_prob)
    for crop_name in (k for k in expected if k.endswith(".jpg")):
        crop = read_canonical(str(utkface_dir / crop_name))
        face = estimator.predict(crop, aligned=True)[0]
        said[crop_name] = (face.age, face.female_prob)
        wrong = estimator.predict(np.ascontiguousarray(crop[:, :, ::-1]), aligned=True)[0]
        as_bgr[crop_name] = (wrong.age, wrong.female_prob)
        plain = estimator.model.predict_inputs(estimator.model.preprocess_crop(crop, None))[0]
        not_realigned[crop_name] = (plain.age, plain.female_prob)
    for key, (age, female) in said.items():
        assert age == pytest.approx(expected[key]["age"], abs=AGE_TOLERANCE), key
        assert female == pytest.approx(expected[key]["female_prob"], abs=FEMALE_TOLERANCE), key

    def caught(outputs):  # would the tolerances above have caught these outputs?
        return any(abs(age - expected[k]["age"]) > AGE_TOLERANCE
                   or abs(female - expected[k]["female_prob"]) > FEMALE_TOLERANCE for k, (age, female) in outputs.items())
    assert caught(as_bgr), "feeding BGR would pass these tolerances"
    assert caught(not_realigned), "skipping the card's re-alignment would pass these tolerances"


# --- imports point one way -----------------------------------------------------------------------------

def module_imports() -> dict:
    """{module: {agegender modules it imports anywhere in its source, functions included}}."""
    graph = {}
    for folder in ("edge", "train", "export"):
        for path in (REPO / folder).glob("*.py"):
            module = f"agegender.{folder}.{path.stem}".replace(".__init__", "")
            found = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agegender"):
                    found.add(node.module)
                    found.update(f"{node.module}.{a.name}" for a in node.names)
                elif isinstance(node, ast.Import):
                    found.update(a.name for a in node.names if a.name.startswith("agegender"))
            graph[module] = found
    return {m: {i for i in deps if i in graph and i != m} for m, deps in graph.items()}


def test_imports_point_one_way_and_never_in_a_circle():
    graph = module_imports()
    assert len(graph) > 30
    for module, deps in graph.items():
        if module.startswith("agegender.edge"):
            assert not [d for d in deps if d.startswith(("agegender.train", "agegender.export"))], module
        if module.startswith("agegender.train"):
            assert not [d for d in deps if d.startswith("agegender.export")], module
        if module.startswith("agegender.export"):
            assert "agegender.edge.cli" not in deps, module

    def reaches(start, target, seen):
        for dep in graph[start]:
            if dep == target or (dep not in seen and not seen.add(dep) and reaches(dep, target, seen)):
                return True
        return False
    cycles = [m for m in graph if reaches(m, m, set())]
    assert not cycles, f"modules that import themselves back: {cycles}"


def test_input_contracts_are_built_only_from_cards():
    """No module builds an InputContract of its own (from defaults) but the card type."""
    offenders = []
    for folder in ("edge", "train", "export"):
        for path in (REPO / folder).glob("*.py"):
            if path.name in ("card.py", "contract.py"):
                continue
            if "InputContract(" in path.read_text():
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders


def test_the_card_is_read_for_alignment_not_its_prose():
    for folder in ("edge", "train", "export", "benchmarks"):
        for path in (REPO / folder).glob("*.py"):
            assert "training_alignment" not in path.read_text(), path


def test_score_threshold_with_the_haar_fallback_is_not_silently_dropped(tmp_path, caplog):
    from agegender.edge.detectors import create_detector

    os.environ.pop("AGEGENDER_DETECTOR", None)
    caplog.set_level("WARNING")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path)
    try:
        create_detector(None, max_side=320, score_threshold=0.9)
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME")
        else:
            os.environ["XDG_CACHE_HOME"] = old
    assert "--score-threshold applies to YuNet only" in caplog.text
    assert math.isfinite(0.9)


def test_a_run_from_a_parent_keeps_its_contract_at_the_runs_input_size():
    import dataclasses

    from agegender.edge.card import new_training_card
    from agegender.edge.contract import InputContract

    template = ((0.3, 0.3), (0.7, 0.3), (0.5, 0.5), (0.32, 0.68), (0.66, 0.69))
    parent = dataclasses.replace(new_training_card(128, "multi", "landmarks"),
                                 contract=InputContract(size=128, template=template, box_margin=1.3),
                                 detector={"name": "yunet"})
    child = new_training_card(144, "multi", "landmarks", parent=parent)
    assert child.contract.size == 144
    assert child.contract.template == template and child.contract.box_margin == 1.3
    assert child.detector == {"name": "yunet"}
