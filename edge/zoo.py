"""Where models live: the shipped models, the user cache, and ``agegender models fetch|list``.

* Shipped age/gender models are installed with the package (``agegender.models``,
  the repository's ``models/`` folder). The default is the full-int8 TFLite.
  ``$AGEGENDER_MODEL`` overrides the default.
* The YuNet face detector is looked up as ``--detector-model``, ``$AGEGENDER_DETECTOR``
  or in the user cache (``~/.cache/agegender``). ``agegender models fetch`` downloads it
  from the OpenCV model zoo into the cache and checks its sha256; nothing is ever
  downloaded implicitly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import time
import urllib.request
from importlib import resources
from typing import Optional

from agegender.edge.detectors import YUNET_FILE, YUNET_SHA256, YUNET_URL, cache_dir
from agegender.edge.errors import AgeGenderError
from agegender.edge.files import atomic_path, file_from, remove_partials, sha256_file

log = logging.getLogger(__name__)

DEFAULT_MODEL = "agegender_mnv2_128_int8.tflite"
MODEL_ENV = "AGEGENDER_MODEL"
MODEL_SUFFIXES = (".tflite", ".onnx", ".keras")


def shipped_models_dir() -> str:
    return str(resources.files("agegender.models"))


def default_model_path() -> str:
    found = file_from(None, MODEL_ENV, "model file")
    if found:
        return found
    path = os.path.join(shipped_models_dir(), DEFAULT_MODEL)
    if not os.path.isfile(path):
        raise AgeGenderError(f"the default model {DEFAULT_MODEL} is not installed in {shipped_models_dir()}; "
                             "pass --model FILE")
    return path


@dataclasses.dataclass
class InstalledModel:
    name: str
    kind: str  # "age/gender" or "face detector"
    path: str
    size_bytes: int
    sha256: str
    default: bool = False


def list_models(detector_model: Optional[str] = None) -> list[InstalledModel]:
    """Age/gender models shipped with the package and face detectors that can be found."""
    out = []
    folder = shipped_models_dir()
    default = None
    with contextlib.suppress(AgeGenderError):
        default = os.path.abspath(default_model_path())
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        if name.endswith(MODEL_SUFFIXES):
            out.append(InstalledModel(name, "age/gender", path, os.path.getsize(path), sha256_file(path),
                                      os.path.abspath(path) == default))
    candidates = [detector_model, os.environ.get("AGEGENDER_DETECTOR"), os.path.join(cache_dir(), YUNET_FILE)]
    seen = set()
    for path in candidates:
        if path and os.path.isfile(path) and os.path.abspath(path) not in seen:
            seen.add(os.path.abspath(path))
            out.append(InstalledModel(os.path.basename(path), "face detector", path, os.path.getsize(path),
                                      sha256_file(path)))
    return out


def detector_in_use(detector_model: Optional[str] = None) -> str:
    """Which face detector the runtime will use, and from where, in one line."""
    from agegender.edge.detectors import DETECTOR_ENV, find_yunet

    path = find_yunet(detector_model)  # raises for a --detector-model / $AGEGENDER_DETECTOR that is missing
    if path is None:
        return ("face detector in use: OpenCV's Haar cascade (fallback; much less accurate). "
                "Get YuNet with `agegender models fetch`")
    origin = ("--detector-model" if detector_model else f"${DETECTOR_ENV}" if os.environ.get(DETECTOR_ENV)
              else "the user cache")
    return f"face detector in use: YuNet, {path} (from {origin})"


MAX_DOWNLOAD_BYTES = 10 * 2 ** 20  # YuNet is 232 kB: anything much bigger is not it


def fetch(url: str = YUNET_URL, sha256: str = YUNET_SHA256, dest_dir: Optional[str] = None,
          name: str = YUNET_FILE, timeout: float = 60.0, max_bytes: int = MAX_DOWNLOAD_BYTES) -> str:
    """Download a file into the cache, check its sha256, and only then move it into place.

    ``timeout`` bounds the whole download (not only each read) and ``max_bytes`` its size; what
    an earlier, killed fetch left behind (``.partial-*``) is removed first."""
    if not url.lower().startswith(("http://", "https://", "file://")):
        raise AgeGenderError(f"--url {url!r}: not an http(s) address")
    dest_dir = dest_dir or cache_dir()
    created = not os.path.isdir(dest_dir)
    os.makedirs(dest_dir, exist_ok=True)
    remove_partials(dest_dir)
    dest = os.path.join(dest_dir, name)
    if os.path.isfile(dest) and sha256_file(dest) == sha256:
        log.info("%s is already in %s", name, dest_dir)
        return dest
    try:
        with atomic_path(dest) as tmp:  # renamed into place only once the checksum is right
            digest = hashlib.sha256()
            log.info("downloading %s", url)
            deadline = time.monotonic() + timeout
            received = 0
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
                    declared = int(response.headers.get("Content-Length") or 0)
                    if declared > max_bytes:
                        raise AgeGenderError(f"{url}: {declared} bytes is far too large for {name}; not downloaded")
                    for block in iter(lambda: response.read(1 << 16), b""):
                        received += len(block)
                        if received > max_bytes:
                            raise AgeGenderError(f"{url}: more than {max_bytes // 2 ** 20} MiB, far too large for "
                                                 f"{name}; download stopped")
                        if time.monotonic() > deadline:
                            raise AgeGenderError(f"{url}: download took more than {timeout:.0f} s; stopped")
                        digest.update(block)
                        f.write(block)
            except (OSError, ValueError) as exc:
                raise AgeGenderError(
                    f"cannot download {url}: {getattr(exc, 'reason', exc)}. Without internet, copy "
                    f"{name} here from another machine and pass --detector-model FILE or set $AGEGENDER_DETECTOR, "
                    "or fetch from a reachable mirror with --url") from None
            if digest.hexdigest() != sha256:
                raise AgeGenderError(f"{url}: checksum mismatch (got sha256 {digest.hexdigest()}, expected "
                                     f"{sha256}); the file was not installed")
        return dest
    finally:
        if created and not os.listdir(dest_dir):  # a failed first fetch leaves no empty cache folder behind
            with contextlib.suppress(OSError):
                os.rmdir(dest_dir)
