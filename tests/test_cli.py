import argparse
import subprocess
import sys

import pytest

from agegender.edge import cli


def test_missing_data_folder_is_one_clear_line(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert "data not found" in str(exit_info.value.code)


def test_missing_tensorflow_says_what_to_install(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("tensorflow", "keras") else real(name, *a))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    message = str(exit_info.value.code)
    assert "pip install" in message and "[train]" in message


@pytest.mark.parametrize("args,needle", [
    (["train", "--img-size", "-3", "--out", "x"], "--img-size"),
    (["train", "--epochs", "0", "--out", "x"], "at least 1"),
    (["train", "--arch", "resnet", "--out", "x"], "invalid choice"),
    (["run", "--threads", "0"], "--threads: must be at least 1"),
    (["run", "--smoothing", "2"], "must be at most 1"),
    (["predict", "x.jpg", "--max-faces", "-1"], "--max-faces"),
    (["benchmark", "--frame-size", "640by480"], "WIDTHxHEIGHT"),
    (["benchmark", "--runs", "zero"], "--runs"),
    (["bias", "--size", "0", "--out", "x"], "--size"),
    (["evaluate", "m.tflite", "--batch-size", "0"], "--batch-size"),
])
def test_parser_rejects_impossible_values(args, needle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    assert needle in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "agegender.edge.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "agegender" in out.stdout


def test_help_examples_keep_their_line_breaks():
    """Every command's --help: an example command continued with a backslash stays on two lines
    (a lost backslash glues the next line on, far to the right)."""
    import re

    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("agegender", parser)] + sorted(subparsers.choices.items()):
        for line in sub.format_help().splitlines():
            assert not re.search(r"\S {6,}--\w", line), f"{name} --help: {line.strip()[:90]}"


def test_unknown_source_is_one_clear_line(tmp_path):
    for source in (str(tmp_path / "nosuch.mp4"), str(tmp_path / "*.jpg"), "cam7x"):
        out = subprocess.run([sys.executable, "-m", "agegender.edge.cli", "run", "--source", source],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and "Traceback" not in out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith("agegender run: "), out.stderr
