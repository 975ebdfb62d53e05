"""Training: phases, checkpoints every epoch, resume, early stopping, curves.

A run lives in one folder (``--out runs/NAME``)::

    config.json        what was asked (architecture, sizes, data, command)
    state.json         how far it got (epochs done, best score, patience used)
    checkpoint.keras   the last finished epoch, with its optimizer state (for --resume)
    best.keras         the best epoch on the validation split
    snapshots/         every epoch's weights (--snapshots, --average greedy)
    averaged.keras     --average greedy: the greedy average of epochs, if it beats best.keras
    history.csv        one row per epoch; curves.png draws it
    model.keras        the final model (= best.keras), written when the run ends
    model.json         its card: input contract, validation metrics, training command

Pretrained backbones (mobilenetv2, autoencoder) train in two phases: ``head`` (the
backbone frozen) for ``--head-epochs``, then ``finetune`` (the backbone unfrozen, its
BatchNorm layers kept in inference mode) for ``--epochs`` with a cosine learning
rate. Scratch CNNs have one phase, ``full``. Every file is written to a temporary
name and renamed, so a crash never leaves half a model behind; ``--resume`` picks up
after the last finished epoch.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import sys
import time
from typing import Optional

import keras
import numpy as np

from agegender.edge.card import ModelCard, new_training_card
from agegender.edge.errors import AgeGenderError
from agegender.edge.files import atomic_write_bytes, portable_command, remove_partials
from agegender.train import data as data_mod
from agegender.train.dataset import FaceSequence
from agegender.train.losses import AgeDistributionLoss, AgeMAE, GenderLoss
from agegender.train.model_io import atomic_save, load_model
from agegender.train.soup import save_snapshot, snapshot_file
from agegender.train.models import (TASK_OUTPUTS, ModelSpec, build_model, count_params,
                                    set_backbone_trainable)

log = logging.getLogger(__name__)

PRETRAINED = ("mobilenetv2", "autoencoder")
# --consistency W weighs the gender views' squared logit difference by W and the age views' difference
# by W x this, per year: a 1-year disagreement costs as much as a 0.45 logit one
AGE_CONSISTENCY_SCALE = 0.2


@dataclasses.dataclass
class TrainConfig:
    data: object  # one dataset (str) or several ([str]), each "[NAME=]PATH" (see data.DataSource)
    out: str
    arch: str = "mobilenetv2"
    task: str = "multi"
    img_size: int = 128
    epochs: int = 15  # fine-tuning epochs (pretrained) or all epochs (scratch)
    head_epochs: int = 2  # frozen-backbone epochs before fine-tuning (pretrained only)
    batch_size: int = 64
    lr: float = 1e-3
    finetune_lr: float = 2e-4
    min_lr_fraction: float = 0.02
    weights: Optional[str] = None
    width: int = 32  # base channels of the scratch CNNs
    patience: int = 5
    gender_weight: float = 2.0
    seed: int = 1
    split_dir: Optional[str] = None
    max_images: Optional[int] = None  # cap per split, for smoke runs
    workers: int = 2
    train_names: Optional[list] = None  # explicit training subset (bias study); None = split
    align_detector: Optional[str] = None  # YuNet file: train on crops re-aligned as the runtime aligns
    init_from: Optional[str] = None  # a .keras model of the same architecture to start from
    ae_epochs: int = 5  # autoencoder pretraining epochs (--arch autoencoder without --weights)
    data_weights: Optional[dict] = None  # {dataset name: share of the draws}; default: equal shares
    age_balance: float = 0.0  # 0: draw faces as they come; > 0: inverse age frequency ** this
    augment: str = "none"  # camera / old-photo augmentation families (train/augment.py)
    snapshots: bool = False  # keep every epoch's weights in snapshots/ (train/soup.py)
    average: str = "none"  # "greedy": the run's model is the greedy average of its epochs if it scores better
    consistency: float = 0.0  # > 0: paired views of each face, their answers pulled together (train/losses.py)
    command: str = ""

    def sources(self) -> list:
        """The datasets as ``DataSource``s with their shares of the draws (``data.data_sources``)."""
        return data_mod.data_sources(self.data, self.split_dir, self.data_weights)

    def phases(self) -> list[tuple[str, int]]:
        """[(phase, epochs)] in order."""
        if self.arch in PRETRAINED:
            return [("head", self.head_epochs), ("finetune", self.epochs)]
        return [("full", self.epochs)]

    @property
    def total_epochs(self) -> int:
        return sum(n for _, n in self.phases())


def phase_at(config: TrainConfig, epoch: int) -> tuple[str, int, int]:
    """(phase, first epoch of the phase, epochs in it) for a global epoch index."""
    start = 0
    for phase, n in config.phases():
        if epoch < start + n:
            return phase, start, n
        start += n
    phase, n = config.phases()[-1]
    return phase, start - n, n


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Constant for the head phase; cosine decay to min_lr_fraction inside the others."""
    phase, start, n = phase_at(config, epoch)
    base = config.finetune_lr if phase == "finetune" else config.lr
    if phase == "head":
        return base
    t = (epoch - start) / max(1, n - 1) if n > 1 else 0.0
    return base * (config.min_lr_fraction + (1 - config.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * t)))


def monitor_score(task: str, logs: dict) -> float:
    """Lower is better. multi: val age MAE + 20 x val gender error (1 point = 0.2 years)."""
    if task == "multi":
        return logs["val_age_mae"] + 20.0 * (1.0 - logs["val_gender_accuracy"])
    if task == "age":
        return logs["val_age_mae"] if "val_age_mae" in logs else logs["val_mae"]
    key = "val_gender_accuracy" if task == "gender" else "val_group_accuracy"
    if key not in logs:
        key = "val_accuracy"
    return 1.0 - logs[key]


def compile_model(model: keras.Model, config: TrainConfig, lr: float) -> None:
    losses, metrics, weights = {}, {}, {}
    for output in TASK_OUTPUTS[config.task]:
        if output == "age":
            losses["age"] = AgeDistributionLoss(consistency=config.consistency * AGE_CONSISTENCY_SCALE)
            metrics["age"], weights["age"] = [AgeMAE()], 1.0
        elif output == "gender":
            losses["gender"] = GenderLoss(consistency=config.consistency)
            metrics["gender"] = [keras.metrics.BinaryAccuracy(name="accuracy")]
            weights["gender"] = config.gender_weight
        else:
            losses["group"] = keras.losses.SparseCategoricalCrossentropy()
            metrics["group"] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            weights["group"] = 1.0
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=losses, metrics=metrics,
                  loss_weights=weights)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


class RunFolder:
    """The files of one training run (see the module docstring)."""

    def __init__(self, out: str):
        self.out = out
        os.makedirs(out, exist_ok=True)
        remove_partials(out)  # what a killed run was writing

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def read_state(self) -> Optional[dict]:
        try:
            with open(self.path("state.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def write_state(self, state: dict) -> None:
        atomic_write_text(self.path("state.json"), json.dumps(state, indent=2))

    def read_history(self) -> list[dict]:
        try:
            with open(self.path("history.csv"), newline="") as f:
                return list(csv.DictReader(f))
        except FileNotFoundError:
            return []

    def write_history(self, rows: list[dict]) -> None:
        keys = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path("history.csv"), text.getvalue())


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: history row, checkpoint, best model, state, curves; early stopping."""

    def __init__(self, run: RunFolder, config: TrainConfig, state: dict, started: float):
        super().__init__()
        self.run, self.config, self.state, self.started = run, config, state, started

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        score = monitor_score(self.config.task, logs)
        phase, phase_start, phase_epochs = phase_at(self.config, epoch)
        row = {"epoch": epoch + 1, "phase": phase, "lr": learning_rate(self.config, epoch),
               "seconds": round(time.time() - self.state.get("epoch_started", time.time()), 1),
               "score": round(score, 5), **{k: round(float(v), 6) for k, v in logs.items()}}
        history = self.run.read_history() + [row]
        self.run.write_history(history)
        atomic_save(self.model, self.run.path("checkpoint.keras"))
        if self.config.snapshots or self.config.average != "none":
            save_snapshot(self.model.get_weights(), snapshot_file(self.run.path("snapshots"), epoch + 1))
        improved = score < self.state.get("best_score", float("inf"))
        if improved:
            atomic_save(self.model, self.run.path("best.keras"))
            self.state.update(best_score=score, best_epoch=epoch + 1, wait=0,
                              best_logs={k: float(v) for k, v in logs.items()})
        else:
            self.state["wait"] = self.state.get("wait", 0) + 1
        self.state.update(epochs_done=epoch + 1, phase=phase,
                          train_seconds=self.state.get("train_seconds", 0.0) + row["seconds"])
        self.run.write_state(self.state)
        if epoch + 1 == phase_start + phase_epochs and phase != self.config.phases()[-1][0]:
            atomic_save(self.model, self.run.path(f"{phase}.keras"))  # each phase's result, for reports
        try:
            from agegender.train.plots import plot_history
            plot_history(history, self.run.path("curves.png"))
        except ImportError:  # matplotlib is optional
            pass
        log.info("epoch %d/%d (%s) score %.4f%s", epoch + 1, self.config.total_epochs, phase, score,
                 " (best)" if improved else f" (best {self.state['best_score']:.4f} at epoch "
                 f"{self.state['best_epoch']}, patience {self.state['wait']}/{self.config.patience})")
        # Early stopping applies within the last phase only: the head phase always completes.
        last_phase = self.config.phases()[-1][0]
        if phase == last_phase and self.state["wait"] >= self.config.patience:
            log.info("early stop: no improvement in %d epochs", self.state["wait"])
            self.state["stopped_early"] = True
            self.run.write_state(self.state)
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.state["epoch_started"] = time.time()


def load_splits(config: TrainConfig):
    """(train records, val records, {dataset: read report}) over every dataset of the run."""
    train, val, reports = [], [], {}
    for source in config.sources():
        records, reports[source.name] = data_mod.read_source(source)
        source_train = data_mod.select_source_split(records, "train", source)
        if config.train_names is not None:
            wanted = set(config.train_names)
            source_train = [r for r in records if r.name in wanted]
        source_val = data_mod.select_source_split(records, "val", source)
        if config.max_images:  # smoke runs: a seeded sample spread over ages and genders
            source_train = data_mod.stratified_sample(source_train, config.max_images, config.seed)
            source_val = data_mod.stratified_sample(source_val, max(8, config.max_images // 4), config.seed)
        train += source_train
        val += source_val
    return train, val, reports


def training_sampling(config: TrainConfig, records) -> Optional[np.ndarray]:
    """Per-face draw probabilities (dataset shares x age balance), or None for plain shuffling."""
    from agegender.train.sampling import expected_age_histogram, sampling_probabilities

    names = sorted({r.dataset for r in records})
    if config.age_balance == 0 and len(names) == 1:
        return None
    weights = {s.name: s.weight for s in config.sources()}
    ages = [r.age for r in records]
    probs = sampling_probabilities([r.dataset for r in records], ages, weights, config.age_balance)
    bands = (0, 7, 13, 20, 40, 60)
    before = expected_age_histogram(ages, np.full(len(ages), 1 / len(ages)), bands)
    after = expected_age_histogram(ages, probs, bands)
    log.info("sampling: age balance %.2f, dataset shares %s; share of draws by band %s",
             config.age_balance, weights, ", ".join(f"{b}+: {x:.1%} (was {y:.1%})"
                                                   for b, x, y in zip(bands, after, before)))
    return probs


def load_all_landmarks(config: TrainConfig, records) -> dict:
    from agegender.train.landmarks import load_landmarks

    found = {}
    for source in config.sources():
        mine = [r for r in records if r.dataset == source.name]
        found.update(load_landmarks(mine, source.path, config.align_detector))
    return found


def train(config: TrainConfig, resume: bool = False) -> dict:
    """Train (or resume) a run; returns its final state."""
    run = RunFolder(config.out)
    state = run.read_state() if resume else None
    if state is None and os.path.exists(run.path("state.json")) and not resume:
        raise FileExistsError(f"{config.out} already holds a run; use --resume to continue it "
                              "or choose another --out")
    if state is not None and os.path.isfile(run.path("config.json")):
        with open(run.path("config.json")) as f:  # the card keeps the command that started the run
            config.command = json.load(f).get("command") or config.command
    from agegender.train.augment import parse_families

    train_recs, val_recs, reports = load_splits(config)
    for name, report in reports.items():
        log.info("data %s: %s", name, report.summary())
    log.info("train %d, val %d images", len(train_recs), len(val_recs))
    outputs = TASK_OUTPUTS[config.task]
    landmarks = None
    if config.align_detector:
        landmarks = load_all_landmarks(config, train_recs + val_recs)
        log.info("alignment: %d of %d crops re-aligned by their landmarks", len(landmarks),
                 len(train_recs) + len(val_recs))
    card = run_card(config)
    contract = card.contract
    seqs = dict(
        train=FaceSequence(train_recs, contract, config.batch_size, augment_images=True,
                           shuffle=True, seed=config.seed, outputs=outputs, workers=config.workers,
                           landmarks=landmarks, families=parse_families(config.augment),
                           sampling_p=training_sampling(config, train_recs), pairs=config.consistency > 0),
        val=FaceSequence(val_recs, contract, config.batch_size, outputs=outputs,
                         workers=config.workers, landmarks=landmarks),
    )
    spec = ModelSpec(arch=config.arch, task=config.task, img_size=config.img_size,
                     weights=config.weights, width=config.width,
                     random_backbone=bool(config.init_from))  # every weight then comes from that model
    start_epoch = 0
    model = None
    if state is not None:
        start_epoch = state["epochs_done"]
        if state.get("stopped_early") or start_epoch >= config.total_epochs:
            log.info("run already finished (%d epochs)", start_epoch)
            average_stage(run, config, state, seqs["val"])
            return finish(run, config, state, spec, card)
        model = load_model(run.path("checkpoint.keras"))
        log.info("resuming %s after epoch %d", config.out, start_epoch)
    else:
        state = {"epochs_done": 0, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write_text(run.path("config.json"), json.dumps(dataclasses.asdict(config), indent=2))
        keras.utils.set_random_seed(config.seed)
        if config.arch == "autoencoder" and not spec.weights:
            spec.weights = pretrain_stage(config, train_recs, val_recs, landmarks, state, contract)
        model = build_model(spec)
        if config.init_from:
            try:  # a fully convolutional model takes its weights at any input size; a flattening one does not
                model.set_weights(load_model(config.init_from, compile=False).get_weights())
            except ValueError as exc:
                raise AgeGenderError(f"--init-from {config.init_from}: its weights do not fit this model "
                                    f"({config.arch}, {config.img_size} px): {str(exc).splitlines()[0][:200]}") from None
            log.info("weights initialised from %s", config.init_from)
            if config.average != "none":  # the starting model may join the average too (as epoch 0)
                save_snapshot(model.get_weights(), snapshot_file(run.path("snapshots"), 0))
    started = time.time()
    verbose = 1 if sys.stdout.isatty() else 2
    epoch = start_epoch
    while epoch < config.total_epochs:
        phase, phase_start, n = phase_at(config, epoch)
        fresh_phase = epoch == phase_start or state.get("phase") != phase
        if phase == "head" and (fresh_phase or epoch == 0):
            set_backbone_trainable(model, False)
        if fresh_phase and phase == "finetune":
            set_backbone_trainable(model, True)
            state["wait"] = 0
        if fresh_phase or not getattr(model, "optimizer", None):
            compile_model(model, config, learning_rate(config, epoch))
        log.info("phase %s: epochs %d-%d, %d trainable weights", phase, epoch + 1, phase_start + n,
                 len(model.trainable_weights))
        callbacks = [
            keras.callbacks.LearningRateScheduler(lambda e, _lr: learning_rate(config, e)),
            EpochCheckpoint(run, config, state, started),
            keras.callbacks.TerminateOnNaN(),
        ]
        model.fit(seqs["train"], validation_data=seqs["val"], initial_epoch=epoch,
                  epochs=phase_start + n, callbacks=callbacks, verbose=verbose)
        epoch = state["epochs_done"]
        if state.get("stopped_early") or epoch < phase_start + n:
            break
    average_stage(run, config, state, seqs["val"])
    return finish(run, config, state, spec, card)


def run_card(config: TrainConfig) -> ModelCard:
    """The run's model card: its contract comes from the model it starts from (--init-from), so the
    template and margins it was trained with carry over; a new model gets the default contract."""
    from agegender.edge.files import sha256_file

    parent = ModelCard.load_for(config.init_from) if config.init_from else None
    detector = None
    if config.align_detector:
        detector = {"name": "yunet", "file": os.path.basename(config.align_detector),
                    "sha256": sha256_file(config.align_detector),
                    "measured": "the landmarks of every training crop (agegender.train.landmarks)"}
    sources = [s.describe() for s in config.sources()]
    licence = "; ".join(f"{s['title']}: {s['licence']}" for s in sources)
    return new_training_card(config.img_size, config.task, "landmarks" if config.align_detector else "crop",
                             detector, sources, licence, parent)


def parent_model(path: Optional[str]) -> Optional[dict]:
    """What a run was initialised from: the file, its checksum and how it was trained (its card)."""
    if not path:
        return None
    from agegender.edge.files import sha256_file

    parent = {"path": path, "sha256": sha256_file(path) if os.path.isfile(path) else None}
    training = ModelCard.load_for(path).extra
    for key in ("training_command", "initialised_from"):
        if training.get(key):
            parent[key] = training[key]
    return parent


def pretrain_stage(config: TrainConfig, train_recs, val_recs, landmarks, state: dict, contract) -> str:
    """Stage 1 of --arch autoencoder: pretrain into OUT/autoencoder; returns the encoder file."""
    from agegender.train.autoencoder import pretrain_autoencoder

    spec = ModelSpec(arch="cnn", img_size=config.img_size, width=config.width)
    result = pretrain_autoencoder(train_recs, val_recs, os.path.join(config.out, "autoencoder"), spec, contract,
                                  epochs=config.ae_epochs, batch_size=config.batch_size, workers=config.workers,
                                  landmarks=landmarks)
    state["autoencoder"] = dataclasses.asdict(result)
    return result.encoder_path


def average_stage(run: RunFolder, config: TrainConfig, state: dict, val_seq) -> None:
    """--average greedy: average the run's epoch snapshots (and the starting model, epoch 0, when
    --init-from) greedily by validation score (train/soup.py); the average is kept
    (averaged.keras) only if it beats the best trained epoch."""
    if config.average == "none" or "soup" in state:
        return
    from agegender.train.soup import greedy_soup, list_snapshots, load_snapshot

    model = load_model(run.path("checkpoint.keras"))  # compiled: its metrics give the score
    logs_of_score = {}  # each evaluation's validation logs by its score: the kept average's, for the card

    def validation_score(weights) -> float:
        model.set_weights(weights)
        logs = {f"val_{k}": float(v) for k, v in model.evaluate(val_seq, return_dict=True, verbose=0).items()}
        score = monitor_score(config.task, logs)
        logs_of_score[score] = logs
        return score

    snapshots = list_snapshots(run.path("snapshots"))
    scores = {int(row["epoch"]): float(row["score"]) for row in run.read_history()}
    best_epoch_score = min(scores.values(), default=float("inf"))
    for epoch in sorted(set(snapshots) - set(scores)):  # the starting model (epoch 0) has no history row
        scores[epoch] = validation_score(load_snapshot(snapshots[epoch]))
        log.info("soup: epoch %d (the starting model) scores %.4f", epoch, scores[epoch])
    weights, result = greedy_soup(scores, snapshots, validation_score)
    soup = dataclasses.asdict(result)
    if result.score < best_epoch_score:  # an average (or the starting model) beats every trained epoch
        model.set_weights(weights)
        atomic_save(model, run.path("averaged.keras"))
        best_logs = {k: v for k, v in state.get("best_logs", {}).items() if not k.startswith("val_")}
        state["best_logs"] = {**best_logs, **logs_of_score[result.score]}
        soup["file"] = "averaged.keras"
        log.info("average of epochs %s scores %.4f (best trained epoch %.4f): kept", result.epochs, result.score,
                 best_epoch_score)
    else:
        log.info("no average of epochs beats the best epoch (%.4f): best.keras kept", best_epoch_score)
    state["soup"] = soup
    run.write_state(state)


def finish(run: RunFolder, config: TrainConfig, state: dict, spec: ModelSpec, card: ModelCard) -> dict:
    """model.keras (the best epoch, or the average of epochs that beat it) and its card, model.json."""
    # the final model without optimizer state: a third of the checkpoint's size
    best = load_model(run.path(state.get("soup", {}).get("file", "best.keras")), compile=False)
    atomic_save(best, run.path("model.keras"))
    card.extra.update({
        "architecture": spec.arch,
        "parameters": count_params(best),
        "best_epoch": state.get("best_epoch"),
        "epochs_done": state.get("epochs_done"),
        "train_seconds": round(state.get("train_seconds", 0.0), 1),
        "validation": state.get("best_logs", {}),
        "initialised_from": parent_model(config.init_from),
        "autoencoder_pretraining": state.get("autoencoder"),
        "age_balance": config.age_balance,
        "augment": config.augment,
        "weight_average": state.get("soup"),
        "training_command": portable_command(config.command),
    })
    card.save(run.path("model.json"))
    state["finished"] = True
    run.write_state(state)
    log.info("finished: %s (best epoch %s, validation %s)", run.path("model.keras"),
             state.get("best_epoch"), {k: round(v, 4) for k, v in state.get("best_logs", {}).items()
                                       if k.startswith("val_")})
    return state
