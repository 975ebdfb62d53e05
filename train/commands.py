"""The desktop-side commands: ``train``, ``evaluate`` and ``bias`` (they need ``.[train]``).

Argument parsing only, importable without TensorFlow (so ``agegender --help`` lists them on the
edge install); each command imports its training module when it runs.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from agegender.edge.cli_args import (add_command, dataset_weight, image_size, non_negative_float,
                                     non_negative_int, positive_float, positive_int, require_training_stack)


# --- train --------------------------------------------------------------------

def add_training_options(p: argparse.ArgumentParser) -> None:
    """The options shared by `train` and `bias`."""
    p.add_argument("--data", default=None, action="append", metavar="[NAME=]PATH",
                   help="UTKFace folder or CSV file,age,gender[,race]; give it several times to train on "
                        "several datasets at once, each with its split files in train/splits/NAME/ "
                        "(NAME defaults to the folder's name: utkface, aaf) (default: $AGEGENDER_DATA)")
    p.add_argument("--data-weight", default=[], action="append", metavar="NAME=W", type=dataset_weight,
                   help="share of the training draws for dataset NAME (default: equal shares)")
    p.add_argument("--age-balance", type=non_negative_float, default=0.0, metavar="POWER",
                   help="draw faces with weight 1/frequency(age)**POWER (smoothed age bins), so that children, "
                        "teenagers and the over-60s are not pulled to the dense middle: 0 = off, 1 = flat "
                        "(default %(default)s)")
    p.add_argument("--augment", default="none", metavar="FAMILIES",
                   help="camera and old-photo augmentation: all, none, or a comma list of colour, grey, lowres, "
                        "blur, noise, jpeg, jitter (default %(default)s)")
    p.add_argument("--snapshots", action="store_true",
                   help="keep every epoch's weights in OUT/snapshots/ (about 12 MB each)")
    p.add_argument("--average", default="none", choices=["none", "greedy"],
                   help="greedy: at the end, average the epochs' weights, best validation score first, keeping an "
                        "epoch only if the average scores better on validation; the run's model is that average "
                        "if it beats the best epoch (implies --snapshots; default %(default)s)")
    p.add_argument("--consistency", type=non_negative_float, default=0.0, metavar="W",
                   help="train on two augmentations of every face per batch and pull their answers together: "
                        "W x (gender logit difference)^2 + 0.2 W x |age difference| in years; steadier answers "
                        "under crop, light and camera changes (0 = off, default)")
    p.add_argument("--arch", default="mobilenetv2",
                   choices=["cnn", "cnn-skip", "autoencoder", "mobilenetv2"], help="backbone (default %(default)s)")
    p.add_argument("--task", default="multi", choices=["multi", "age", "gender", "group"],
                   help="what to predict (default %(default)s: age distribution + gender)")
    p.add_argument("--img-size", type=image_size, default=128, help="input size S (SxS px, default %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=15,
                   help="fine-tuning epochs (pretrained backbones) or all epochs (default %(default)s)")
    p.add_argument("--head-epochs", type=non_negative_int, default=2,
                   help="epochs with the backbone frozen before fine-tuning (default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (head / scratch)")
    p.add_argument("--finetune-lr", type=positive_float, default=2e-4, help="peak fine-tuning learning rate")
    p.add_argument("--patience", type=positive_int, default=5, help="early-stopping patience, in epochs")
    p.add_argument("--weights", default=None,
                   help="ImageNet MobileNetV2 .h5 (mobilenetv2), or a pretrained encoder.keras (autoencoder; "
                        "without it the autoencoder is pretrained first, into OUT/autoencoder)")
    p.add_argument("--ae-epochs", type=positive_int, default=5,
                   help="autoencoder pretraining epochs (--arch autoencoder without --weights; default %(default)s)")
    p.add_argument("--width", type=positive_int, default=32, help="base channels of the scratch CNNs (default %(default)s)")
    p.add_argument("--split-dir", default=None, help="folder with train/val/test.txt (default: shipped UTKFace split)")
    p.add_argument("--align-detector", default=None, metavar="YUNET.onnx",
                   help="re-align every crop by this YuNet file's landmarks exactly as the runtime aligns camera "
                        "faces, and augment along the camera path (landmarks cached in the user cache)")
    p.add_argument("--init-from", default=None, metavar="MODEL.keras",
                   help="start from this model's weights (same --arch/--task/--img-size), e.g. to adapt a model")
    p.add_argument("--max-images", type=positive_int, default=None, help="use at most N training images (smoke runs)")
    p.add_argument("--workers", type=positive_int, default=2, help="data-loading threads")
    p.add_argument("--seed", type=int, default=1)


def add_train(sub) -> None:
    p = add_command(
        sub, "train", help="train a model (needs .[train])",
        description="Train an age/gender model on a UTKFace folder or a CSV of labelled faces.",
        epilog="""examples:
  # the shipped model: MobileNetV2, 2 frozen-backbone epochs then fine-tuning
  agegender train --data $AGEGENDER_DATA --arch mobilenetv2 \\
      --weights mobilenet_v2_1.0_224_no_top.h5 --img-size 128 --epochs 15 --out runs/mnv2
  # a compact CNN from scratch
  agegender train --data $AGEGENDER_DATA --arch cnn --img-size 96 --epochs 20 --out runs/cnn
  # continue an interrupted run where it stopped
  agegender train --resume --out runs/mnv2 ...same options...
  # continue a model at a low learning rate and ship the best average of its epochs
  agegender train ... --init-from models/agegender_mnv2_128.keras --head-epochs 0 \\
      --finetune-lr 8e-5 --average greedy --out runs/soup

The run folder gets config.json, state.json, checkpoint.keras (every epoch),
best.keras, history.csv, curves.png, snapshots/ (--snapshots, --average), and at
the end model.keras + model.json.""")
    add_training_options(p)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out after its last finished epoch")
    p.set_defaults(func=cmd_train)


def data_arg(args):
    """The --data value(s): one path (str), or a list when given several times."""
    import os

    items = args.data or ([os.environ["AGEGENDER_DATA"]] if os.environ.get("AGEGENDER_DATA") else [])
    if isinstance(items, str):
        items = [items]
    if not items:
        raise SystemExit("no data: pass --data DIR (or a CSV), or set AGEGENDER_DATA")
    for item in items:
        name, sep, path = item.partition("=")
        path = path if sep and not os.path.exists(item) else item
        if not os.path.exists(path):
            raise SystemExit(f"data not found: {path}")
    return items[0] if len(items) == 1 else items


def training_config(args, data: str, **overrides):
    from agegender.edge.files import portable_command
    from agegender.train.trainer import TrainConfig

    fields = dict(
        data=data, out=args.out, arch=args.arch, task=args.task, img_size=args.img_size,
        epochs=args.epochs, head_epochs=args.head_epochs, batch_size=args.batch_size, lr=args.lr,
        finetune_lr=args.finetune_lr, weights=args.weights, width=args.width, patience=args.patience, seed=args.seed,
        split_dir=args.split_dir, max_images=args.max_images, workers=args.workers,
        align_detector=args.align_detector, init_from=args.init_from, ae_epochs=args.ae_epochs,
        data_weights=dict(args.data_weight) or None, age_balance=args.age_balance, augment=args.augment,
        snapshots=args.snapshots, average=args.average, consistency=args.consistency,
        command=portable_command(shlex.join(["agegender"] + sys.argv[1:])))
    fields.update(overrides)
    return TrainConfig(**fields)


def cmd_train(args) -> int:
    data = data_arg(args)
    require_training_stack("train")
    from agegender.train.augment import parse_families
    from agegender.train.trainer import train

    try:
        parse_families(args.augment)
    except ValueError as exc:
        raise SystemExit(f"agegender train: --augment: {exc}")
    if args.arch == "mobilenetv2" and not args.weights and not args.init_from and not args.resume:
        raise SystemExit("agegender train: --arch mobilenetv2 needs --weights mobilenet_v2_1.0_224_no_top.h5 "
                         "(ImageNet; it cannot be downloaded here), or --init-from MODEL.keras to start from "
                         "a trained model")

    state = train(training_config(args, data), resume=args.resume)
    return 0 if state.get("finished") else 1


# --- evaluate -----------------------------------------------------------------

def add_evaluate(sub) -> None:
    p = add_command(
        sub, "evaluate", help="score a model on a split (needs .[train] for .keras models)",
        description="Score a model: age MAE overall and per age band, age-group accuracy with\n"
                    "per-class precision/recall/F1 and a confusion matrix, gender accuracy/\n"
                    "precision/recall/F1, and all of it split by gender and by race (bias).",
        epilog="""examples:
  agegender evaluate models/agegender_mnv2_128.keras --data $AGEGENDER_DATA --split test --out reports/mnv2
  agegender evaluate model.tflite --data other_faces.csv --split all --out reports/other
  # every dataset on its own held-out split (AAF: its official val half), with a summary table
  agegender evaluate model.tflite --data UTKFace/ --data aaf/labels.csv --split test \\
      --align-detector yunet.onnx --out reports/cross

Writes metrics.json, report.md and confusion.png in --out.""")
    p.add_argument("model", help="a .keras, .tflite or .onnx model")
    p.add_argument("--data", default=None, action="append", metavar="[NAME=]PATH",
                   help="UTKFace folder or CSV (default: $AGEGENDER_DATA); give it several times to score each "
                        "dataset on its own split files (train/splits/NAME/) and write a summary across them")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"],
                   help="which split to score; 'all' = every readable labelled image (default %(default)s)")
    p.add_argument("--split-dir", default=None, help="folder with train/val/test.txt (default: shipped UTKFace split)")
    p.add_argument("--out", default=None, help="report folder (default: print only)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--max-images", type=positive_int, default=None, help="score at most N images")
    p.add_argument("--align-detector", default=None, metavar="YUNET.onnx",
                   help="re-align each crop by its landmarks as the runtime does (for models trained with "
                        "--align-detector); default: score the crops as given")
    p.add_argument("--flip", action="store_true",
                   help="average each face with its mirror image, as the runtime's --flip does")
    p.add_argument("--views", type=positive_int, default=1,
                   help="average each face over this many alignment views (1-5), as the runtime's --views does "
                        "(default %(default)s)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    data = data_arg(args)
    if args.model.endswith(".keras"):
        require_training_stack("evaluate")
    from agegender.train.data import data_sources
    from agegender.train.evaluate import evaluate_datasets, summary_markdown

    reports = evaluate_datasets(args.model, data_sources(data, args.split_dir), split=args.split, out=args.out,
                                batch_size=args.batch_size, max_images=args.max_images,
                                align_detector=args.align_detector, flip=args.flip,
                                views=args.views)
    for report in reports.values():
        print(report.summary())
    if len(reports) > 1:
        print(summary_markdown(reports))
    return 0


# --- bias -----------------------------------------------------------------------

def add_bias(sub) -> None:
    p = add_command(
        sub, "bias", help="gender-bias study: male-only vs mixed training (needs .[train])",
        description="Train two identical models on training-split subsets of the same size, (a) men\n"
                    "only and (b) half men, half women, score both on the same mixed test split, and\n"
                    "report age-group accuracy/precision/recall/F1, age MAE and gender accuracy,\n"
                    "overall and per gender and race: does a model trained on one gender generalise?",
        epilog="""example:
  agegender bias --data $AGEGENDER_DATA --arch cnn --width 16 --img-size 64 --epochs 8 --out runs/bias

Writes OUT/male_only and OUT/mixed (two ordinary run folders; an interrupted study
resumes where it stopped), and OUT/bias.md, bias.json and bias.png.""")
    add_training_options(p)
    p.add_argument("--size", type=positive_int, default=None,
                   help="faces per training set (default: every man of the training split, capped so the "
                        "mixed set can be half women)")
    p.add_argument("--out", required=True, help="study folder")
    p.set_defaults(func=cmd_bias, arch="cnn", img_size=64, epochs=8)


def cmd_bias(args) -> int:
    data = data_arg(args)
    require_training_stack("bias")
    from agegender.train.bias import run_bias_study

    report = run_bias_study(training_config(args, data), args.out, size=args.size, seed=args.seed)
    print(report.to_markdown())
    return 0


def add_train_commands(sub) -> None:
    for add in (add_train, add_evaluate, add_bias):
        add(sub)
