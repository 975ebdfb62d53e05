"""The README and every --help teach commands that work as written.

* every `agegender ...` command in the README's bash blocks and in each subcommand's
  --help examples is parsed by the real parser (an unknown or misspelt option fails);
* the README's first command (the quick start) and its Python blocks run for real.

A fresh-venv run of the same (``pip install .`` first) is ``benchmarks/readme_check.py``."""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agegender.edge import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PLACEHOLDERS = {"$AGEGENDER_DATA": "/data/utkface", "$AGEGENDER_DETECTOR": "/d/yunet.onnx",
                "$AGEGENDER_SHARED": "/shared", "$AAF": "/data/aaf"}


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def commands_in(block: str) -> list[list[str]]:
    """`agegender ...` commands of a shell block: continuation lines joined, `&&`/`;` split, comments cut."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = line.split(" #")[0].strip()
        line = re.split(r"\s[12]?>", line)[0]  # output redirection is the shell's, not ours
        for part in re.split(r"&&|;|\|", line):
            words = shlex.split(part.strip()) if part.strip() else []
            if words[:1] == ["agegender"]:
                out.append([PLACEHOLDERS.get(w, w) for w in words[1:]])
    return out


def help_examples() -> list[tuple[str, list[str]]]:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    found = []
    for name, sub in commands.items():
        for argv in commands_in(sub.epilog or ""):
            if "..." not in " ".join(argv):
                found.append((name, argv))
    return found


README_COMMANDS = [argv for block in code_blocks(README, "bash") for argv in commands_in(block)]


@pytest.mark.parametrize("argv", README_COMMANDS, ids=lambda a: " ".join(a)[:60])
def test_readme_commands_parse(argv):
    parser = cli.build_parser()
    if "--resume" in argv and "...same" in " ".join(argv):
        pytest.skip("a resume line that stands for the same options")
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`agegender {' '.join(argv)}` does not parse (exit {exc.code})")


@pytest.mark.parametrize("command,argv", help_examples(), ids=lambda a: a if isinstance(a, str) else " ".join(a)[:50])
def test_help_examples_parse(command, argv):
    try:
        cli.build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"the example in `agegender {command} --help`, `agegender {' '.join(argv)}`, "
                    f"does not parse (exit {exc.code})")


def test_there_is_something_to_check():
    assert len(README_COMMANDS) >= 5 and len(help_examples()) >= 15


def test_the_quick_start_runs_as_written(tmp_path):
    first = code_blocks(README, "bash")[0]
    runnable = [argv for argv in commands_in(first) if argv[:2] != ["models", "fetch"]]  # no network here
    assert runnable == [["predict", "edge/samples/astronaut.png"]]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "AGEGENDER_DETECTOR": ""}
    proc = subprocess.run([sys.executable, "-m", "agegender.edge.cli", *runnable[0]], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"astronaut.png: face at .*: age \d+ ± \d+ \(\w+\), (female|male) 0\.\d\d", proc.stdout)


def test_the_readme_python_blocks_run(tmp_path, yunet_model):
    """As after `agegender models fetch`: YuNet in the user cache."""
    (tmp_path / "agegender").mkdir()
    shutil.copy(yunet_model, tmp_path / "agegender" / "face_detection_yunet_2023mar.onnx")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "AGEGENDER_DETECTOR": ""}
    blocks = code_blocks(README, "python")
    assert blocks
    for block in blocks:
        proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=REPO, env=env,
                              timeout=120)
        assert proc.returncode == 0, f"{block}\n{proc.stderr}"
        still = re.search(r"\(\d+, \d+, \d+, \d+\) [\d.]+ [\d.]+ \w+ (female|male) ", proc.stdout)
        video = re.search(r"\[\(1, [\d.]+, '(female|male)'\)\] \{'frames': 3, 'full_detections': \d", proc.stdout)
        assert still or video, proc.stdout
