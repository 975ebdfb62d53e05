"""The README's commands in a fresh virtual environment, as a new user runs them.

Creates a venv, runs the README's first command (``pip install .``, then ``predict`` on the
sample photo; ``models fetch`` is tried and may fail without internet, in which case YuNet is
copied into the venv's cache from ``--detector-model``, as a user without internet would do),
then the Python API block, ``--version``, ``models list`` and a short ``benchmark`` on the
base install (no onnxruntime, no TensorFlow). Prints each command, its exit status and the
last lines of its output; exits 1 if any failed. Not part of CI (it installs from the
package index).

    python benchmarks/readme_check.py --detector-model face_detection_yunet_2023mar.onnx
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd: str, env: dict, cwd: str = REPO, timeout: int = 900) -> int:
    print(f"$ {cmd}", flush=True)
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
    for line in tail:
        print(f"    {line}")
    print(f"    -> exit {proc.returncode}", flush=True)
    return proc.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector-model", default=os.environ.get("AGEGENDER_DETECTOR"),
                        help="YuNet file to put in the cache when `models fetch` cannot download it")
    parser.add_argument("--keep", action="store_true", help="keep the venv")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="agegender-readme-")
    venv, cache = os.path.join(root, "venv"), os.path.join(root, "cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGEGENDER_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=os.path.join(venv, "bin") + os.pathsep + env.get("PATH", ""), XDG_CACHE_HOME=cache)
    readme = open(os.path.join(REPO, "README.md")).read()
    first = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)[0].strip()
    python_blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    failures = 0
    try:
        failures += run(f"{sys.executable} -m venv {venv}", env) != 0
        install, _, rest = first.partition(" && ")
        failures += run(install + " -q", env) != 0
        fetch, _, predict = rest.partition("; ")
        if run(fetch, env, timeout=120) != 0 and args.detector_model:
            print("    (no internet: YuNet copied into the cache, as a user would)")
            os.makedirs(os.path.join(cache, "agegender"), exist_ok=True)
            shutil.copy(args.detector_model, os.path.join(cache, "agegender", os.path.basename(args.detector_model)))
        failures += run(predict, env) != 0
        for block in python_blocks:
            path = os.path.join(root, "block.py")
            with open(path, "w") as f:
                f.write(block)
            failures += run(f"python {path}", env) != 0
        for cmd in ("agegender --version", "agegender models list",
                    "agegender benchmark --runs 50 --warmup 5 --frames 10",
                    "python -c \"import sys, agegender.edge.estimator; "
                    "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow')\"",
                    "pip list --format=freeze"):
            failures += run(cmd, env) != 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{failures} command(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
