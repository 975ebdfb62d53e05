"""The ``agegender export`` subcommand (argument parsing only; the work is in exporter.py)."""
from __future__ import annotations

import shlex
import sys

from agegender.edge import cli_args
from agegender.export.convert import FORMATS


def add_export(sub) -> None:
    p = cli_args.add_command(
        sub, "export", help="export a Keras model to verified TFLite/ONNX files (needs .[train])",
        description="Convert a trained .keras model to the files the edge runtime runs, verify each one\n"
                    "against Keras on the test split, and write a model card (JSON + Markdown) for each.",
        epilog=f"""formats: {', '.join(FORMATS)}
  tflite-int8 is full-integer with uint8 input: raw camera pixels go straight in.
  onnx-int8 is onnxruntime static QDQ quantization (after quant_pre_process).
  int8 formats are calibrated on a stratified sample of the --calib training split
  (all ages, both genders), never on test images.

example:
  agegender export models/agegender_mnv2_128.keras --calib $AGEGENDER_DATA --out models \\
      --formats tflite-fp32,tflite-fp16,tflite-int8,onnx-fp32,onnx-int8

A format whose test MAE grows more than --max-mae-increase years over Keras (or whose
gender accuracy drops more than --max-gender-drop points) fails: its file is removed
and the command exits with status 1.""")
    p.add_argument("model", help="the trained .keras model")
    p.add_argument("--formats", default="tflite-int8,onnx-fp32",
                   help="comma-separated formats (default %(default)s)")
    p.add_argument("--calib", default=None, help="labelled faces for int8 calibration (training split is used)")
    p.add_argument("--data", default=None, help="labelled faces for verification (default: --calib)")
    p.add_argument("--split", default="test", choices=["val", "test", "all"], help="verification split")
    p.add_argument("--split-dir", default=None, help="folder with train/val/test.txt (default: shipped split)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--name", default=None, help="file name stem (default: the model's)")
    p.add_argument("--calib-size", type=cli_args.positive_int, default=300, help="calibration faces (default %(default)s)")
    p.add_argument("--max-images", type=cli_args.positive_int, default=None, help="verify on at most N images")
    p.add_argument("--max-mae-increase", type=float, default=0.25, help="years (default %(default)s)")
    p.add_argument("--max-gender-drop", type=float, default=0.5, help="points of accuracy (default %(default)s)")
    p.add_argument("--align-detector", default=None, metavar="YUNET.onnx",
                   help="for models trained with --align-detector: calibrate and verify on crops re-aligned "
                        "by their landmarks, as in training and at run time")
    p.add_argument("--report", default=None, help="also write the verification table to this Markdown file")
    p.add_argument("--cross-data", default=[], action="append", metavar="[NAME=]PATH",
                   help="also score each exported file on this dataset's test split (AAF: its official val "
                        "half) and record MAE, gender and the bias per age band in its card; give it once per "
                        "dataset")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    cli_args.require_training_stack("export")
    from agegender.edge.files import portable_command
    from agegender.export.exporter import export_model

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    result = export_model(args.model, formats, args.out, calib=args.calib, data=args.data, split=args.split,
                          split_dir=args.split_dir, name=args.name, calib_size=args.calib_size,
                          max_images=args.max_images, max_mae_increase=args.max_mae_increase,
                          max_gender_drop=args.max_gender_drop, align_detector=args.align_detector,
                          cross_data=args.cross_data, command=portable_command(shlex.join(["agegender"] + sys.argv[1:])))
    table = result.table()
    print(table)
    if args.report:
        with open(args.report, "w") as f:
            f.write(table + "\n")
    return 0 if result.passed else 1
