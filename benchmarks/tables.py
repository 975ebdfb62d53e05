"""Shared by the benchmark scripts: a finished table goes to the screen and, when asked, to a file."""
from __future__ import annotations

from typing import Optional

from agegender.edge.files import atomic_write_bytes


def show_and_save(text: str, path: Optional[str] = None) -> None:
    """Print ``text``; with ``path``, also write it there (whole or not at all)."""
    print(text)
    if path:
        atomic_write_bytes(path, text.encode())
