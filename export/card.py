"""Model cards: a JSON for programs and a Markdown page for people, beside each model file."""
from __future__ import annotations

import json
import os
from typing import Optional

from agegender.edge.contract import AGE_BINS, InputContract
from agegender.edge.files import atomic_write_bytes, sha256_file

LICENCE = ("Trained on UTKFace (Zhang, Song, Qi, CVPR 2017), which is available for non-commercial "
           "research purposes only: this model inherits that restriction.")

OUTPUTS = {
    "age": f"float32 [N, {AGE_BINS}]: probability of each age 0..{AGE_BINS - 1}; age = expectation, "
           "spread = standard deviation (renormalise first: quantized outputs may not sum to 1)",
    "gender": "float32 [N, 1]: probability that the face is female (UTKFace gender 1)",
    "group": "float32 [N, G]: probability of each age group",
}


def build_card(model_path: str, fmt: str, contract: InputContract, outputs, metrics: dict,
               training: Optional[dict] = None, export_command: str = "", calibration: Optional[dict] = None,
               input_dtype: str = "float32") -> dict:
    return {
        "name": os.path.basename(model_path),
        "file": os.path.basename(model_path),
        "format": fmt,
        "size_bytes": os.path.getsize(model_path),
        "sha256": sha256_file(model_path),
        "input": {**contract.to_dict(), "name": "image", "dtype": input_dtype},
        "outputs": {name: OUTPUTS[name] for name in outputs},
        "age_groups": dict(zip(contract.age_groups.names, contract.age_groups.lower_bounds)),
        "metrics": metrics,
        "training": training or {},
        "export_command": export_command,
        "calibration": calibration,
        "licence": LICENCE,
    }


def card_markdown(card: dict) -> str:
    inp, m = card["input"], card["metrics"]
    lines = [
        f"# {card['name']}", "",
        f"`{card['file']}`: {card['format']}, {card['size_bytes'] / 1e6:.2f} MB, sha256 `{card['sha256']}`", "",
        "## Input contract", "",
        f"- shape {inp['shape']} ({inp['layout']}), **{inp['dtype']}**, colour order **{inp['colour_order']}**, "
        "raw pixel values 0..255 (the model rescales inside)",
        f"- the face is warped to a {inp['canonical_size']}x{inp['canonical_size']} canonical crop (UTKFace style) "
        f"with a similarity transform from 5 landmarks onto the template {inp['template']} "
        f"({', '.join(inp['template_points'])}, fractions of the crop), then resized with {inp['resize']}",
        f"- without landmarks: the detector box grown {inp['box_margin']}x around its centre, "
        f"moved down {inp['box_shift']} box heights", "",
        "## Outputs", "",
        *[f"- `{name}`: {text}" for name, text in card["outputs"].items()],
        "- age groups (derived from the age distribution): "
        + ", ".join(f"{k} {v}+" for k, v in card["age_groups"].items()), "",
        "## Metrics", "",
    ]
    if m:
        lines += [f"On the **{m.get('split', '?')}** split ({m.get('n_images', '?')} images, "
                  f"{m.get('split_files', 'shipped UTKFace split files')}):", "",
                  "| metric | this file | Keras model | change |", "|---|---:|---:|---:|"]
        for key, label in (("age_mae", "age MAE (years)"), ("gender_accuracy", "gender accuracy"),
                           ("age_group_accuracy", "age-group accuracy")):
            if key in m:
                ref = m.get("keras", {}).get(key)
                pct = key != "age_mae"
                fmt = (lambda v: f"{v:.2%}") if pct else (lambda v: f"{v:.3f}")
                change = "" if ref is None else (f"{(m[key] - ref) * 100:+.2f} pt" if pct else f"{m[key] - ref:+.3f}")
                lines.append(f"| {label} | {fmt(m[key])} | {'' if ref is None else fmt(ref)} | {change} |")
        lines.append("")
    training = card.get("training") or {}
    if training.get("training_command"):
        lines += ["## How it was made", ""]
        parents, parent = [], training.get("initialised_from")
        while isinstance(parent, dict):  # earlier stages first
            parents.insert(0, parent)
            parent = parent.get("initialised_from")
        for stage, p in enumerate(parents, 1):
            lines += [f"Stage {stage} (`{p['path']}`, sha256 `{p.get('sha256')}`):", "", "```",
                      p.get("training_command", "(unknown)"), "```", ""]
        lines += [f"{'Stage ' + str(len(parents) + 1) if parents else 'Training'}"
                  + (f" ({training['training_alignment']})" if training.get("training_alignment") else "") + ":",
                  "", "```", training["training_command"], "```", ""]
    if card.get("export_command"):
        lines += ["Export:", "", "```", card["export_command"], "```", ""]
    if card.get("calibration"):
        cal = card["calibration"]
        lines += [f"Calibration: {cal.get('n')} training-split faces, per age band {cal.get('bands')}, "
                  f"per gender {cal.get('genders')}.", ""]
    lines += ["## Licence", "", card["licence"], ""]
    return "\n".join(lines)


def write_card(card: dict, model_path: str) -> tuple[str, str]:
    """model.tflite -> model.tflite.json (for programs) and model.tflite.md (for people)."""
    atomic_write_bytes(model_path + ".json", (json.dumps(card, indent=2) + "\n").encode())
    atomic_write_bytes(model_path + ".md", card_markdown(card).encode())
    return model_path + ".json", model_path + ".md"
