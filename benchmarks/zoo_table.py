r"""The model-zoo table: every architecture x task scored on the same test split.

Reads run folders (``agegender train --out ...``), scores each ``model.keras`` (and,
for two-phase runs, the model at the end of the frozen-backbone phase, ``head.keras``)
on the test split, and writes a Markdown table plus JSON: age MAE, age-group accuracy
and macro F1, gender accuracy, parameters, file size, training time, epochs and the
command of each row.

    python benchmarks/zoo_table.py --data $AGEGENDER_DATA --runs runs/zoo/* runs/mnv2_128 \\
        --out benchmarks/zoo
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from agegender.edge.benchmark import write_report
from agegender.train import data as data_mod
from agegender.edge.card import ModelCard
from agegender.train.evaluate import compute_metrics, predict_records
from agegender.train.keras_backend import open_any_model

log = logging.getLogger("zoo_table")


def phase_epochs(run: str) -> str:
    import csv

    with open(os.path.join(run, "history.csv"), newline="") as f:
        phases = [row["phase"] for row in csv.DictReader(f)]
    counts = {p: phases.count(p) for p in dict.fromkeys(phases)}
    return " + ".join(f"{n} {p}" for p, n in counts.items())


def score(model_path: str, records, landmarks=None) -> dict:
    model = open_any_model(model_path)
    m = compute_metrics(predict_records(model, records, landmarks=landmarks), model.card.groups)
    row = {"age_mae": m.get("age_mae")}
    if "age_group" in m:
        row["group_accuracy"] = m["age_group"]["accuracy"]
        row["group_macro_f1"] = m["age_group"]["macro"]["f1"]
    if "gender" in m:
        row["gender_accuracy"] = m["gender"]["accuracy"]
    return row


def rows_for(run: str, records, landmarks_for) -> list[dict]:
    model_card = ModelCard.load(os.path.join(run, "model.json"))
    card = model_card.to_dict()
    landmarks = landmarks_for(model_card)
    base = {"run": run, "arch": card["architecture"], "task": card["task"], "img_size": card["input"]["size"],
            "parameters": card["parameters"], "size_mb": os.path.getsize(os.path.join(run, "model.keras")) / 1e6,
            "train_minutes": card["train_seconds"] / 60, "epochs": phase_epochs(run),
            "command": card["training_command"]}
    pretrain = card.get("autoencoder_pretraining")
    if pretrain:
        base["train_minutes"] += pretrain["seconds"] / 60
        base["epochs"] = f"{pretrain['epochs']} autoencoder + " + base["epochs"]
    rows = []
    head = os.path.join(run, "head.keras")
    if os.path.isfile(head):
        rows.append({**base, "phase": "frozen backbone (end of head phase)", **score(head, records, landmarks)})
    rows.append({**base, "phase": "final (best epoch)" if rows else "", **score(os.path.join(run, "model.keras"),
                                                                                records, landmarks)})
    return rows


def pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def to_markdown(rows: list[dict], n_test: int) -> str:
    lines = [f"Test split: {n_test} faces (`train/splits/utkface/test.txt`). Age-group accuracy for age and "
             "multi-task models comes from their age distribution (child 0-12, teenager 13-19, adult 20-59, "
             "senior 60+); group models predict the 4 groups directly. Training time on the 2-core machine.", "",
             "| arch | task | phase | px | epochs | age MAE | age-group acc. | group macro F1 | gender acc. | "
             "params | size (MB) | train (min) |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mae = "-" if r.get("age_mae") is None else f"{r['age_mae']:.2f}"
        f1 = "-" if r.get("group_macro_f1") is None else f"{r['group_macro_f1']:.3f}"
        lines.append(f"| {r['arch']} | {r['task']} | {r['phase'] or '-'} | {r['img_size']} | {r['epochs']} | {mae} | "
                     f"{pct(r.get('group_accuracy'))} | {f1} | {pct(r.get('gender_accuracy'))} | "
                     f"{r['parameters'] / 1e6:.2f} M | {r['size_mb']:.1f} | {r['train_minutes']:.0f} |")
    lines += ["", "Commands:", ""]
    seen = set()
    for r in rows:
        if r["command"] not in seen:
            seen.add(r["command"])
            lines.append(f"- {r['arch']} / {r['task']}: `{r['command']}`")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("AGEGENDER_DATA"))
    p.add_argument("--runs", nargs="+", required=True, help="run folders (with model.keras and model.json)")
    p.add_argument("--align-detector", default=None,
                   help="YuNet .onnx: score models trained with --align-detector on re-aligned crops")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    records, _ = data_mod.read_dataset(args.data, check_content=False)
    test = data_mod.select_split(records, "test")

    def landmarks_for(card):
        if not (card.alignment == "landmarks" and args.align_detector):
            return None
        from agegender.train.landmarks import load_landmarks
        return load_landmarks(test, args.data, args.align_detector)

    rows = []
    for run in args.runs:
        if not os.path.isfile(os.path.join(run, "model.json")):
            log.warning("%s: no finished run (model.json) - skipped", run)
            continue
        log.info("scoring %s", run)
        rows += rows_for(run, test, landmarks_for)
    write_report(args.out, "zoo", {"test_images": len(test), "rows": rows}, to_markdown(rows, len(test)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
