"""The gender-bias study: does a model trained on men only generalise to women?

Two identical models are trained on training-split subsets of the same size:

* ``male_only``: men only;
* ``mixed``: half men, half women.

Both are scored on the same (mixed) test split: age-group accuracy, macro precision,
recall and F1, age MAE and gender accuracy, overall and per gender and race. The
report is ``bias.md`` + ``bias.json`` + ``bias.png`` in the output folder.

    agegender bias --data DIR --arch cnn --img-size 64 --epochs 8 --out runs/bias
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Optional, Sequence

import numpy as np

from agegender.edge.contract import AgeGroups
from agegender.edge.files import atomic_write_bytes
from agegender.train import data as data_mod
from agegender.train import metrics as M
from agegender.train.evaluate import Predictions, attribute_slices, predict_records
from agegender.train.keras_backend import open_any_model

log = logging.getLogger(__name__)

SUBSETS = ("male_only", "mixed")


def bias_subsets(records: Sequence, size: Optional[int] = None, seed: int = 0) -> dict[str, list]:
    """{"male_only": n men, "mixed": n/2 men + n/2 women}, both of size n, drawn from records.

    n defaults to the number of men, capped so that the mixed set can be half women.
    """
    men = [r for r in records if r.gender == 0]
    women = [r for r in records if r.gender == 1]
    largest = min(len(men), 2 * len(women))
    n = largest if size is None else size
    if n < 2 or n > largest:
        raise ValueError(f"cannot draw two training sets of {n} faces: {len(men)} men and "
                         f"{len(women)} women available (at most {largest})")
    rng = np.random.default_rng(seed)

    def draw(pool, k):
        return [pool[i] for i in sorted(rng.permutation(len(pool))[:k])]

    return {"male_only": draw(men, n), "mixed": draw(men, n // 2) + draw(women, n - n // 2)}


def slice_metrics(pred: Predictions, groups: AgeGroups) -> dict:
    """{slice name: metrics} for overall, each gender and each race present."""
    slices = {"overall": np.ones(len(pred.records), bool)}
    for masks in attribute_slices(pred.records).values():
        slices.update(masks)
    true_group = groups.index_of(pred.ages)
    if pred.age_distribution is not None:
        pred_group = groups.index_of(pred.predicted_ages)  # the runtime's rule (postprocess.decide_age_group)
    else:
        pred_group = pred.group_probs.argmax(-1)
    out = {}
    for name, mask in slices.items():
        scores = M.per_class_scores(M.confusion_matrix(true_group[mask], pred_group[mask], len(groups.names)),
                                    groups.names)
        row = {"n": int(mask.sum()), "group_accuracy": scores["accuracy"],
               "group_precision": scores["macro"]["precision"], "group_recall": scores["macro"]["recall"],
               "group_f1": scores["macro"]["f1"]}
        if pred.age_distribution is not None:
            row["age_mae"] = M.mae(pred.ages[mask], pred.predicted_ages[mask])
        if pred.female_prob is not None:
            row["gender_accuracy"] = float(np.mean(pred.genders[mask] == (pred.female_prob[mask] >= 0.5)))
        out[name] = row
    return out


@dataclasses.dataclass
class BiasReport:
    train_size: int
    test_size: int
    arch: str
    epochs: str
    results: dict  # {subset: {slice: metrics}}
    command: str = ""

    def to_markdown(self) -> str:
        cols = [("group_accuracy", "age-group acc."), ("group_precision", "precision"),
                ("group_recall", "recall"), ("group_f1", "macro F1"), ("age_mae", "age MAE"),
                ("gender_accuracy", "gender acc.")]
        lines = ["# Gender-bias study", "",
                 f"Two identical `{self.arch}` models ({self.epochs}), trained on {self.train_size} training-split "
                 f"faces each: **male-only** vs **mixed** (half men, half women); both scored on the same mixed "
                 f"test split ({self.test_size} faces). Age groups: child 0-12, teenager 13-19, adult 20-59, "
                 "senior 60+; precision/recall/F1 are macro averages over the four groups.", ""]
        if self.command:
            lines += ["```bash", self.command, "```", ""]
        lines += ["| test slice | trained on | n | " + " | ".join(c[1] for c in cols) + " |",
                  "|---|---|---:|" + "---:|" * len(cols)]
        slices = list(next(iter(self.results.values())))
        for slice_name in slices:
            for subset in self.results:
                row = self.results[subset][slice_name]
                cells = [(f"{row[k]:.2f}" if k == "age_mae" else f"{row[k]:.1%}") if k in row else "-"
                         for k, _ in cols]
                lines.append(f"| {slice_name} | {subset.replace('_', '-')} | {row['n']} | " + " | ".join(cells) + " |")
        lines += ["", "![bias](bias.png)", ""]
        return "\n".join(lines)


def run_bias_study(base_config, out: str, size: Optional[int] = None, seed: int = 0) -> BiasReport:
    """Train both models (resuming finished or interrupted runs), score both on the test split, report."""
    from agegender.train.trainer import train

    records, _ = data_mod.read_dataset(base_config.data)
    train_split = data_mod.select_split(records, "train", base_config.split_dir)
    test = data_mod.select_split(records, "test", base_config.split_dir)
    subsets = bias_subsets(train_split, size, seed)
    n = len(subsets["male_only"])
    results = {}
    for name in SUBSETS:
        run_dir = os.path.join(out, name)
        log.info("bias study: training %s on %d faces (%d women) into %s", name, n,
                 sum(r.gender == 1 for r in subsets[name]), run_dir)
        config = dataclasses.replace(base_config, out=run_dir, train_names=[r.name for r in subsets[name]],
                                     max_images=None)
        train(config, resume=os.path.exists(os.path.join(run_dir, "state.json")))
        model = open_any_model(os.path.join(run_dir, "model.keras"))
        results[name] = slice_metrics(predict_records(model, test), model.card.groups)
    epochs = (f"{base_config.head_epochs} frozen + {base_config.epochs} fine-tuning epochs"
              if base_config.arch in ("mobilenetv2", "autoencoder") else f"{base_config.epochs} epochs")
    report = BiasReport(n, len(test), base_config.arch, epochs, results, base_config.command)
    write_bias_report(report, out)
    return report


def write_bias_report(report: BiasReport, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, "bias.json"), json.dumps(dataclasses.asdict(report), indent=2).encode())
    atomic_write_bytes(os.path.join(out, "bias.md"), (report.to_markdown() + "\n").encode())
    try:
        from agegender.train.plots import plot_grouped_bars
    except ImportError:
        log.warning("matplotlib is not installed: no bias.png")
        return
    slices = list(next(iter(report.results.values())))
    panels = {}
    for key, title in (("group_accuracy", "age-group accuracy"), ("group_f1", "age-group macro F1"),
                       ("age_mae", "age MAE (years)")):
        panels[title] = {subset.replace("_", "-"): [report.results[subset][s].get(key, np.nan) for s in slices]
                         for subset in report.results}
    plot_grouped_bars(slices, panels, os.path.join(out, "bias.png"),
                      title=f"male-only vs mixed training ({report.train_size} faces each), test split")
    log.info("bias report written to %s", out)
