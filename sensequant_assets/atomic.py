"""Atomic and durable writes: a reader sees the old file (or directory) or the new one, whole.

Everything is written under a temporary name in the target's directory and fsynced, renamed
into place, and the directory fsynced, so after a return a power cut loses neither the data
nor the rename. A failure leaves no temporary behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644  # mkstemp creates 0600; these files are read by other users and services
DIR_MODE = 0o755


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's fsync makes the renames in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staged_file(path: Path, data: bytes, mode: int = FILE_MODE) -> Iterator[Callable[[], None]]:
    """``data`` written and fsynced beside ``path``; yields the commit that renames it over.

    Writing is what a full disk makes fail, the commit needs no new space: a caller can write,
    record elsewhere, then commit. The temporary is removed if never committed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)

        def commit() -> None:
            os.replace(tmp, path)
            fsync_path(path.parent)

        yield commit
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes, mode: int = FILE_MODE) -> Path:
    """Replace ``path`` with ``data`` atomically and durably, creating parent directories."""
    with staged_file(Path(path), data, mode) as commit:
        commit()
    return Path(path)


@contextmanager
def publish_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target`` to fill; publish it when the block ends.

    On a clean exit every file and directory in it is fsynced, it is renamed to ``target``
    (which must not exist: published directories are never replaced) and the parent fsynced.
    On an exception it is removed and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(staging, DIR_MODE)
        yield staging
        for root, _dirs, files in os.walk(staging, topdown=False):
            for name in files:
                fsync_path(Path(root) / name)
            fsync_path(Path(root))
        if target.exists():
            raise FileExistsError(f"{target} appeared while it was being published")
        os.rename(staging, target)
        fsync_path(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
