"""The table of `benchmarks/ablation_runs.sh`: each short run's validation figures and steadiness.

    python benchmarks/ablation_table.py runs/ablation > benchmarks/ablation/ablation.md
"""
from __future__ import annotations

import json
import os
import sys

ORDER = ["none", "all"] + [f"all-minus-{f}" for f in
                           ("colour", "grey", "lowres", "blur", "noise", "jpeg", "jitter")] + ["all-no-balance"]


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/ablation"))
