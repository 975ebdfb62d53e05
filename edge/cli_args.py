"""Argument types and helpers shared by every command group of the ``agegender`` CLI.

Each folder defines its own commands (``agegender.edge.commands``, ``agegender.train.commands``,
``agegender.export.command``) with these helpers; ``agegender.edge.cli`` only assembles them.
"""
from __future__ import annotations

import argparse
import importlib.util


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def dataset_weight(text: str) -> tuple:
    name, sep, weight = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT (e.g. aaf=0.4), got {text!r}")
    return name, non_negative_float(weight)


def fraction(text: str) -> float:
    """A number in (0, 1]."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1, got {value}")
    return value


def alignment_views(text: str) -> int:
    """How many alignment views to average a face over (``contract.ALIGNMENT_VIEWS``)."""
    from agegender.edge.contract import check_views

    try:
        return check_views(positive_int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def image_size(text: str) -> int:
    value = positive_int(text)
    if not 32 <= value <= 512:
        raise argparse.ArgumentTypeError(f"image size must be between 32 and 512 px, got {value}")
    return value


def add_command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand whose description and examples keep their line breaks in --help; it takes
    -v/-q too, so `agegender run -q` works as well as `agegender -q run`."""
    return sub.add_parser(name, formatter_class=argparse.RawDescriptionHelpFormatter,
                          parents=[verbosity_options()], **kwargs)


def verbosity_options(top_level: bool = False) -> argparse.ArgumentParser:
    """-v/-q; under a subcommand they default to 'not given', so they never undo the top level's."""
    parser = argparse.ArgumentParser(add_help=False)
    default = False if top_level else argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="warnings and errors only")
    return parser


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("agegender")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def require_training_stack(command: str) -> None:
    """Refuse a desktop-side command with an install hint when TensorFlow/Keras are missing."""
    missing = [name for name in ("tensorflow", "keras") if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"agegender {command}: needs {' and '.join(missing)}, which the edge install leaves out.\n"
            "Install the training extras:  pip install 'agegender[train]'   "
            "(from a checkout: pip install '.[train]')")


