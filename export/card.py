"""Model cards beside each exported file: the JSON for programs (``agegender.edge.card``) and a
Markdown page for people."""
from __future__ import annotations

from agegender.edge.card import ModelCard
from agegender.edge.files import atomic_write_bytes


def card_markdown(card: dict) -> str:
    inp, m = card["input"], card.get("metrics") or {}
    lines = [
        f"# {card['name']}", "",
        f"`{card['file']}`: {card['format']}, {card['size_bytes'] / 1e6:.2f} MB, sha256 `{card['sha256']}`", "",
        "## Input contract", "",
        f"- shape {inp['shape']} ({inp['layout']}), **{inp['dtype']}**, colour order **{inp['colour_order']}**, "
        "raw pixel values 0..255 (the model rescales inside)",
        f"- alignment **{card['alignment']}** ("
        + ("trained on crops re-aligned by their landmarks, as the runtime aligns camera faces" if card["alignment"]
           == "landmarks" else "trained on canonical crops as given") + ")",
        f"- the face is warped to a {inp['canonical_size']}x{inp['canonical_size']} canonical crop (UTKFace style) "
        f"with a similarity transform from 5 landmarks onto the template {inp['template']} "
        f"({', '.join(inp['template_points'])}, fractions of the crop), then resized with {inp['resize']}",
        f"- without landmarks: the detector box grown {inp['box_margin']}x around its centre, "
        f"moved down {inp['box_shift']} box heights", "",
        "## Outputs", "",
        f"Task **{card['task']}**.", "",
        *[f"- `{name}`: {text}" for name, text in card["outputs"].items()],
        "- age groups (from the estimated age): "
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
    cross = card.get("cross_dataset_test") or {}
    if cross:
        bands = list(next(iter(cross.values()))["bias_by_band"])
        lines += ["Across datasets (each on its held-out split; AAF: its official val half; faces re-aligned as the "
                  "runtime does; bias = mean signed error, years):", "",
                  "| dataset | n | age MAE | gender acc. | " + " | ".join(f"{b} bias" for b in bands) + " |",
                  "|---|---:|---:|---:|" + "---:|" * len(bands)]
        lines += [f"| {name} | {v['n']} | {v['age_mae']:.2f} | {v['gender_accuracy']:.1%} | "
                  + " | ".join("-" if v["bias_by_band"][b] is None else f"{v['bias_by_band'][b]:+.2f}" for b in bands) + " |" for name, v in cross.items()]
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
        lines += [f"{'Stage ' + str(len(parents) + 1) if parents else 'Training'}:",
                  "", "```", training["training_command"], "```", ""]
        average = training.get("weight_average") or {}
        if average.get("file"):  # the run's model is an average of its epochs (train/soup.py)
            lines += [f"The model is the mean of the weights of epochs {average['epochs']} (epoch 0: the model it "
                      f"started from), chosen greedily on the validation split: score {average['score']:.4f} "
                      f"against {min(r['epoch_score'] for r in average['tried'] if r['epoch']):.4f} for the best "
                      "single epoch (validation age MAE + 20 x gender error).", ""]
    if card.get("export_command"):
        lines += ["Export:", "", "```", card["export_command"], "```", ""]
    if card.get("calibration"):
        cal = card["calibration"]
        lines += [f"Calibration: {cal.get('n')} training-split faces, per age band {cal.get('bands')}, "
                  f"per gender {cal.get('genders')}.", ""]
    if card.get("datasets"):
        lines += ["## Data", "", "| dataset | split files | share of draws | licence |", "|---|---|---:|---|"]
        lines += [f"| {d.get('title', d.get('name'))} | {d.get('split_files', '-')} | {d.get('weight', 1.0):g} | "
                  f"{d.get('licence', '-')} |" for d in card["datasets"]]
        lines.append("")
    lines += ["## Licence", "", card["licence"] or "unknown", ""]
    return "\n".join(lines)


def write_card(card: ModelCard, model_path: str) -> tuple[str, str]:
    """model.tflite -> model.tflite.json (for programs) and model.tflite.md (for people)."""
    card.save(model_path + ".json")
    atomic_write_bytes(model_path + ".md", card_markdown(card.to_dict()).encode())
    return model_path + ".json", model_path + ".md"
