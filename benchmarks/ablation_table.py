"""The table of `benchmarks/ablation_runs.sh`: each short run's validation figures and steadiness.

    python benchmarks/ablation_table.py runs/ablation > benchmarks/ablation/ablation.md

With the runs scored on degraded validation faces (`benchmarks/degraded_val.py --json`, models
labelled ``ablation/RUN``), a second table: what each family does against its own damage, the run
with all families against the run without that one:

    python benchmarks/ablation_table.py runs/ablation --degraded benchmarks/degraded_val.json
"""
from __future__ import annotations

import json
import os
import sys

FAMILIES = ("colour", "grey", "lowres", "blur", "noise", "jpeg", "jitter")
ORDER = ["none", "all"] + [f"all-minus-{f}" for f in FAMILIES] + ["all-no-balance"]


def row(folder: str) -> str:
    with open(os.path.join(folder, "state.json")) as f:
        state = json.load(f)
    logs = state.get("best_logs", {})
    cells = [os.path.basename(folder), f"{logs.get('val_age_mae', float('nan')):.2f}",
             f"{logs.get('val_gender_accuracy', float('nan')):.1%}", f"{state.get('best_score', float('nan')):.2f}"]
    path = os.path.join(folder, "stability.json")
    if os.path.isfile(path):
        with open(path) as f:
            sets = json.load(f)["sets"]
        for name in sorted(sets):
            s = sets[name]
            cells += [f"{s['median_age_spread']:.2f} y", f"{s['gender_flip_rate']:.1%}"]
    return "| " + " | ".join(cells) + " |"


def main(root: str) -> int:
    runs = [os.path.join(root, name) for name in ORDER if os.path.isfile(os.path.join(root, name, "state.json"))]
    print("| run | val age MAE | val gender | val score | AAF val: median spread | AAF val: gender flips "
          "| UTKFace val: median spread | UTKFace val: gender flips |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for folder in runs:
        print(row(folder))
    return 0


def family_table(path: str) -> str:
    """Per family F: on faces damaged by F, the age MAE added to the clean MAE and the gender points lost,
    for the run with every family (``ablation/all``) and the run without F (``ablation/all-minus-F``)."""
    with open(path) as f:
        results = json.load(f)["results"]
    with_all = results["ablation/all"]
    lines = ["| family | dataset | its damage: +MAE with it / without | gender points lost with it / without |",
             "|---|---|---|---|"]
    for family in FAMILIES:
        without = results.get(f"ablation/all-minus-{family}")
        if without is None or family not in with_all[next(iter(with_all))]:
            continue
        for dataset in sorted(with_all):
            a, b = with_all[dataset], without[dataset]
            lines.append(f"| {family} | {dataset} | {a[family]['mae'] - a['clean']['mae']:+.2f} / "
                         f"{b[family]['mae'] - b['clean']['mae']:+.2f} | "
                         f"{100 * (a['clean']['gender'] - a[family]['gender']):.1f} / "
                         f"{100 * (b['clean']['gender'] - b[family]['gender']):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--degraded" in args:
        print(family_table(args[args.index("--degraded") + 1]))
        sys.exit(0)
    sys.exit(main(args[0] if args else "runs/ablation"))
