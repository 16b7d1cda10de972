"""atomic.py: a failed write keeps the old file and leaves no temporary; renames are fsynced.

Also holds the package to the convention that nothing else renames files into place.
"""

from __future__ import annotations

import ast
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import sensequant_assets
from sensequant_assets.atomic import (
    append_durable,
    link_tree,
    publish_dir,
    replace_dir,
    staged_file,
    write_atomic,
    write_atomic_with,
)

PACKAGE = Path(sensequant_assets.__file__).parent


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty directory (``tmp_path`` also holds the test's SENSEQUANT_HOME)."""
    path = tmp_path / "folder"
    path.mkdir()
    return path


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path os.fsync is called on, directories as well as files."""
    calls: list[Path] = []
    real = os.fsync

    def record(fd: int) -> None:
        calls.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return calls


def test_a_linked_tree_keeps_its_bytes_when_the_source_is_replaced(
    folder: Path, fsynced: list[Path]
) -> None:
    """A candidate links its teachers instead of copying them: retraining a window (which
    replaces its directory) must leave the candidate's files as they were reviewed."""
    source = folder / "teacher"
    with replace_dir(source) as staging:
        (staging / "model.txt").write_text("first")
        (staging / "nested").mkdir()
        (staging / "nested" / "metadata.json").write_text("{}")
    fsynced.clear()
    link_tree(source, folder / "bundle" / "teacher")
    linked = folder / "bundle" / "teacher" / "model.txt"
    assert linked.stat().st_ino == (source / "model.txt").stat().st_ino
    assert set(fsynced) == {folder / "bundle" / "teacher", folder / "bundle" / "teacher" / "nested"}
    with replace_dir(source) as staging:
        (staging / "model.txt").write_text("retrained")
    assert linked.read_text() == "first"
    assert (folder / "bundle" / "teacher" / "nested" / "metadata.json").read_text() == "{}"


def test_a_tree_that_cannot_be_linked_is_copied_durably(
    folder: Path, fsynced: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "teacher").mkdir()
    (folder / "teacher" / "model.txt").write_text("bytes")

    def cross_device(src: str, dst: str) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    link_tree(folder / "teacher", folder / "copy")
    copied = folder / "copy" / "model.txt"
    assert copied.read_text() == "bytes"
    assert copied.stat().st_ino != (folder / "teacher" / "model.txt").stat().st_ino
    assert fsynced == [copied, folder / "copy"]


def test_write_atomic_fsyncs_the_file_and_then_its_directory(
    folder: Path, fsynced: list[Path]
) -> None:
    target = folder / "sub" / "state.json"
    write_atomic(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert fsynced[-1] == target.parent and fsynced[-1].is_dir()
    assert fsynced[0].parent == target.parent and fsynced[0].name.startswith(".state.json.")
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_a_writer_that_raises_keeps_the_old_file_and_no_temporary(folder: Path) -> None:
    target = folder / "table.parquet"
    target.write_bytes(b"old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        write_atomic_with(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in folder.iterdir()] == ["table.parquet"]


def test_an_uncommitted_staged_file_is_removed(folder: Path) -> None:
    target = folder / "CURRENT"
    with staged_file(target, b"new"):
        pass
    assert list(folder.iterdir()) == []


def test_a_full_disk_midway_keeps_the_old_file_and_no_temporary(folder: Path) -> None:
    """RLIMIT_FSIZE makes the write fail after 4 KiB, as a full disk would (in a child)."""
    target = folder / "model.txt"
    target.write_bytes(b"old model")
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from sensequant_assets.atomic import write_atomic\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    write_atomic(Path(sys.argv[1]), b'x' * 100_000)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__, exc.errno)\n"
        "    sys.exit(3)\n"
    )
    assert resource.RLIMIT_FSIZE and signal.SIGXFSZ  # POSIX-only test
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert target.read_bytes() == b"old model"
    assert [p.name for p in folder.iterdir()] == ["model.txt"]


def test_replace_dir_swaps_a_whole_directory_and_fsyncs_it(
    folder: Path, fsynced: list[Path]
) -> None:
    target = folder / "teacher"
    target.mkdir()
    (target / "model.txt").write_text("old")
    (target / "stale.txt").write_text("old")
    with replace_dir(target) as staging:
        (staging / "model.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["model.txt"]
    assert (target / "model.txt").read_text() == "new"
    assert [p.name for p in folder.iterdir()] == ["teacher"]
    assert fsynced[-1] == folder
    assert any(p.name == "model.txt" for p in fsynced)


def test_replace_dir_failure_keeps_the_old_directory(folder: Path) -> None:
    target = folder / "student"
    target.mkdir()
    (target / "model.txt").write_text("old")
    with pytest.raises(RuntimeError), replace_dir(target) as staging:
        (staging / "model.txt").write_text("half")
        raise RuntimeError("training crashed")
    assert (target / "model.txt").read_text() == "old"
    assert [p.name for p in folder.iterdir()] == ["student"]


def test_publish_dir_refuses_to_replace(folder: Path) -> None:
    target = folder / "bundle"
    target.mkdir()
    with pytest.raises(FileExistsError), publish_dir(target) as staging:
        (staging / "a").write_text("a")
    assert list(target.iterdir()) == []
    assert [p.name for p in folder.iterdir()] == ["bundle"]


def test_append_durable_fsyncs_a_new_file_and_its_directory(
    folder: Path, fsynced: list[Path]
) -> None:
    log = folder / "history.jsonl"
    append_durable(log, b"one\n")
    assert fsynced == [log, folder]
    append_durable(log, b"two\n")
    assert fsynced[2:] == [log]
    assert log.read_bytes() == b"one\ntwo\n"


def _renames(tree: ast.AST) -> list[int]:
    """Lines calling os.replace/os.rename/shutil.move or a path's .replace(x)/.rename(x)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func = node.func
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        module_call = (owner, func.attr) in {
            ("os", "replace"),
            ("os", "rename"),
            ("shutil", "move"),
        }
        path_call = (
            func.attr in ("replace", "rename")
            and len(node.args) == 1
            and not node.keywords
            and not isinstance(node.args[0], ast.Constant)  # pandas' .rename("name")
        )
        if module_call or path_call:
            lines.append(node.lineno)
    return lines


def test_only_atomic_py_renames_files_into_place() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "atomic.py" or path.parent != PACKAGE
        for line in _renames(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == [], "write through sensequant_assets.atomic instead"


def test_the_rename_check_sees_the_patterns_it_forbids() -> None:
    source = (
        "import os\nos.replace(a, b)\ntmp.replace(path)\nseries.rename('x')\ns.replace('a', 'b')\n"
    )
    assert _renames(ast.parse(source)) == [2, 3]
