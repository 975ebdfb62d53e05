"""The ``agegender`` command line.

Each folder defines its own subcommands (``agegender.edge.commands``, ``agegender.train.commands``,
``agegender.export.command``), registered as the package's ``agegender.commands`` entry points;
this file only assembles them, so the runtime imports nothing of the desktop side. Subcommands
that need TensorFlow (train, evaluate, export, bias) import it when they run, and say how to
install it when it is missing.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from agegender.edge.cli_args import package_version, verbosity_options
from agegender.edge.errors import AgeGenderError

log = logging.getLogger("agegender")

DESCRIPTION = """\
Age and gender estimation from a camera, in real time, on small devices.

Edge side (the base install, no TensorFlow):
  run        the camera loop on a Pi camera, webcam, video, or pictures (--serve: live view in a browser)
  predict    age/gender for still pictures, as text or JSON Lines
  models     list installed models and the face detector in use; fetch the YuNet face detector
  benchmark  latency per face, frames per second end to end, memory

Desktop side (needs `pip install .[train]`):
  train      train a model on UTKFace, AAF or any CSV of labelled faces (several at once)
  evaluate   score a model on one or several datasets: age MAE and bias per band, gender, by group
  export     quantized TFLite / ONNX files, verified against Keras, with model cards
  bias       gender-bias study: a male-only vs a mixed training set
"""

EPILOG = """\
Run `agegender COMMAND --help` for the options of a command.
Data and model paths always come from arguments or environment variables
(AGEGENDER_DATA, AGEGENDER_DETECTOR); nothing is downloaded unless you ask."""


def _command_groups() -> list:
    """The ``add(subparsers)`` function of each command group, registered as the package's
    ``agegender.commands`` entry points (setup.cfg): edge, train, export. Loading them by name keeps
    the runtime free of imports of the desktop side, which registers itself."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group="agegender.commands"), key=lambda e: ORDER.index(e.name)
                   if e.name in ORDER else len(ORDER))
    if not found:
        raise SystemExit("agegender is not installed (no command groups registered): pip install -e .")
    return [e.load() for e in found]


ORDER = ("edge", "train", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agegender", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[verbosity_options(top_level=True)])
    parser.add_argument("--version", action="version", version=f"agegender {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _command_groups():
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    except BrokenPipeError:  # `agegender predict ... | head`: the reader left, which is no error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (FileExistsError, FileNotFoundError) as exc:
        raise SystemExit(f"agegender {args.command}: {exc}") from None
    except AgeGenderError as exc:
        raise SystemExit(f"agegender {args.command}: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
