"""`sensequant prune`: the documented retention, and nothing the registry names."""

import os
import time
from pathlib import Path

import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_OK, main
from sensequant_assets.registry import StateManager

OLD = time.time() - 400 * 86_400


def _file(path: Path, old: bool, text: str = "x" * 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if old:
        os.utime(path, (OLD, OLD))
    return path


def _dir(path: Path, old: bool) -> Path:
    _file(path / "model.txt", old)
    if old:
        os.utime(path, (OLD, OLD))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SENSEQUANT_HOME", str(tmp_path))
    return tmp_path


def _populate(home: Path) -> dict[str, Path]:
    layout = ArtifactLayout(home)
    models = layout.models
    named, orphan, fresh = (
        f"live_candidate_2024010{i}_000000" for i in (1, 2, 3)
    )  # fmt: skip
    return {
        "old raw": _file(home / "data/raw/ohlcv_daily/run-a.parquet", old=True),
        "new raw": _file(home / "data/raw/ohlcv_daily/run-b.parquet", old=False),
        "old progress": _file(layout.progress_dir / "teacher_model_a.json", old=True),
        "new progress": _file(layout.progress_dir / "teacher_model_b.json", old=False),
        "old dryrun": _dir(layout.dryrun_root / "20240101_000000", old=True),
        "new dryrun": _dir(layout.dryrun_root / "20991231_000000", old=False),
        "named copies": _dir(models / named / "teacher_models" / "w1", old=True).parent,
        "orphan copies": _dir(models / orphan / "teacher_models" / "w1", old=True).parent,
        "orphan student": _file(models / orphan / "student" / "student_model.txt", old=True),
        "fresh orphan copies": _dir(models / fresh / "teacher_models" / "w1", old=False).parent,
        "production": _dir(models / "production" / named, old=True),
    }


def test_prune_deletes_only_what_is_past_its_retention(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _populate(home)
    for copies in (paths["named copies"], paths["orphan copies"]):
        os.utime(copies, (OLD, OLD))
    StateManager(ArtifactLayout(home).registry).record_candidate_run(
        "live_candidate_20240101_000000", recommendation="reject"
    )
    doomed = {"old raw", "old progress", "old dryrun", "orphan copies"}

    assert main(["prune", "--dry-run"]) == EXIT_OK
    listed = capsys.readouterr().out
    assert all(p.exists() for p in paths.values())
    assert all(str(paths[name]) in listed for name in doomed)
    assert "4 item(s), would free" in listed

    assert main(["prune"]) == EXIT_OK
    assert "4 item(s), freed" in capsys.readouterr().out
    assert {name for name, p in paths.items() if not p.exists()} == doomed


def test_without_a_registry_no_bundle_is_touched_and_none_is_created(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _populate(home)
    os.utime(paths["orphan copies"], (OLD, OLD))
    assert main(["prune"]) == EXIT_OK
    assert "no registry file: candidate bundles are all kept" in capsys.readouterr().out
    assert paths["orphan copies"].exists() and paths["named copies"].exists()
    assert not ArtifactLayout(home).registry.exists()
    assert not paths["old raw"].exists()
