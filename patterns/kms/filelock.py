"""An advisory lock shared by threads and processes, for files several writers append to
or replace (the LocalKms key file, the audit log): gunicorn workers and a CLI next to a
server must not lose each other's updates."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

__all__ = ["exclusive", "fsync_directory"]


def _load_fcntl() -> Any | None:
    try:
        return importlib.import_module("fcntl")
    except ImportError:  # pragma: no cover - Windows: keep to one process per file
        return None


_FCNTL: Final[Any | None] = _load_fcntl()


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` for the duration of the block.

    Callers also hold a ``threading.Lock``: ``flock`` locks belong to open file
    descriptions, so it serialises processes, not threads sharing one.
    """
    if _FCNTL is None:  # pragma: no cover
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _FCNTL.flock(descriptor, _FCNTL.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (a no-op where unsupported)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(descriptor)
