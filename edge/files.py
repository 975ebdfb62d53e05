"""Small file helpers shared by training, export and the runtime: atomic writes, checksums, lookups."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import Optional

from agegender.edge.errors import AgeGenderError


PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def atomic_path(path: str):
    """A temporary name beside ``path`` (same extension, so writers that go by it still work) to
    write to; renamed over ``path`` when the block ends, removed if it raises. Readers never see
    half a file, and an interrupted write leaves no file at all. The one way this project writes."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=PARTIAL_PREFIX, suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_partials(folder: str) -> None:
    """Remove what an interrupted ``atomic_path`` write left in ``folder`` (never a finished file):
    a run killed outright (SIGKILL) cannot clean up after itself, the next one does."""
    for name in os.listdir(folder):
        if name.startswith(PARTIAL_PREFIX):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


def atomic_write_bytes(path: str, data: bytes) -> None:
    """``data`` to ``path`` atomically (see ``atomic_path``), fsynced."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_from(explicit: Optional[str], env_var: str, what: str) -> Optional[str]:
    """An explicit path, else $env_var; an error naming the origin when the file is missing."""
    for path, origin in ((explicit, ""), (os.environ.get(env_var), f" (from ${env_var})")):
        if path:
            if not os.path.isfile(path):
                raise AgeGenderError(f"{path}{origin}: {what} not found")
            return path
    return None


PATH_VARIABLES = ("AGEGENDER_DATA", "AGEGENDER_DETECTOR", "AGEGENDER_SHARED", "AGEGENDER_MODEL")


def portable_command(command: str) -> str:
    """A command line as others can rerun it: this machine's data paths written as the
    environment variables that name them ($AGEGENDER_DATA, ...), longest path first."""
    values = sorted(((os.environ[v], v) for v in PATH_VARIABLES if os.environ.get(v)),
                    key=lambda item: -len(item[0]))
    for value, name in values:
        command = command.replace(value.rstrip("/"), "$" + name)
    return command
