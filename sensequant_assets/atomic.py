"""Atomic and durable writes: a reader sees the old file (or directory) or the new one, whole.

Everything is written under a temporary name in the target's directory and fsynced, renamed
into place, and the directory fsynced, so after a return a power cut loses neither the data
nor the rename. A failure leaves no temporary behind. This is the package's only module that
renames files into place (a test holds every other module to it).
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


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root``, ``root`` itself last."""
    for directory, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(directory) / name)
        fsync_path(Path(directory))


@contextmanager
def staged_file(path: Path, data: bytes, mode: int = FILE_MODE) -> Iterator[Callable[[], None]]:
    """``data`` written and fsynced beside ``path``; yields the commit that renames it over.

    Writing is what a full disk makes fail, the commit needs no new space: a caller can write,
    record elsewhere, then commit. The temporary is removed if never committed.
    """
    with _staged(Path(path), lambda tmp: tmp.write_bytes(data), mode) as commit:
        yield commit


def write_atomic(path: Path, data: bytes, mode: int = FILE_MODE) -> Path:
    """Replace ``path`` with ``data`` atomically and durably, creating parent directories."""
    with staged_file(Path(path), data, mode) as commit:
        commit()
    return Path(path)


def write_atomic_with(path: Path, write: Callable[[Path], object], mode: int = FILE_MODE) -> Path:
    """Replace ``path`` with what ``write(tmp)`` writes to the path it is given.

    For libraries that write to a path themselves (``DataFrame.to_parquet``): the file they
    write is fsynced and renamed like :func:`write_atomic`'s.
    """
    with _staged(Path(path), write, mode) as commit:
        commit()
    return Path(path)


def append_durable(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` in one write and fsync it (and the directory, if new).

    For append-only logs, which are never rewritten: a crash after the return loses nothing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        fsync_path(path.parent)


def link_tree(source: Path, target: Path) -> None:
    """Create ``target`` holding ``source``'s files as hard links, its entries made durable.

    Only for files that are never rewritten in place: every writer here replaces a file or a
    directory by renaming a new one over it, which leaves the linked inode, and so the
    target's bytes, as they were. A link shares bytes already on disk, so only the new
    directories need fsyncing; where a link cannot be made (another file system) the file is
    copied and fsynced instead.
    """

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
            fsync_path(Path(dst))

    shutil.copytree(source, target, copy_function=link)
    for directory, _dirs, _files in os.walk(target, topdown=False):
        fsync_path(Path(directory))


@contextmanager
def _staged(path: Path, write: Callable[[Path], object], mode: int) -> Iterator[Callable[[], None]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        fsync_path(tmp)
        os.chmod(tmp, mode)

        def commit() -> None:
            os.replace(tmp, path)
            fsync_path(path.parent)

        yield commit
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def publish_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target`` to fill; publish it when the block ends.

    On a clean exit every file and directory in it is fsynced, it is renamed to ``target``
    (which must not exist: published directories are never replaced) and the parent fsynced.
    On an exception it is removed and ``target`` is untouched.
    """
    with _staged_dir(target) as staging:
        yield staging
        fsync_tree(staging)
        if target.exists():
            raise FileExistsError(f"{target} appeared while it was being published")
        os.rename(staging, target)
        fsync_path(target.parent)


@contextmanager
def replace_dir(target: Path) -> Iterator[Path]:
    """Like :func:`publish_dir`, but an existing ``target`` is replaced by the new directory.

    A rename cannot overwrite a non-empty directory, so the old one is first moved aside into
    a hidden sibling, the new one renamed in, then the old one deleted; if the second rename
    fails the old one is put back. Readers see the old directory or the new one, never a mix.
    """
    with _staged_dir(target) as staging:
        yield staging
        fsync_tree(staging)
        retired = None
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.rename(target, retired / target.name)
        try:
            os.rename(staging, target)
        except BaseException:
            if retired is not None:
                os.rename(retired / target.name, target)
                shutil.rmtree(retired, ignore_errors=True)
            raise
        fsync_path(target.parent)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


@contextmanager
def _staged_dir(target: Path) -> Iterator[Path]:
    """An empty hidden sibling of ``target`` to fill and rename; removed on an error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(staging, DIR_MODE)
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
