"""Lineage a promotion decision needs: which code, which data, which settings made a candidate.

Two candidates with the same manifest lineage were built from the same commit, the same input
rows and the same configuration; any difference shows up as a different hash. Secrets never
enter: configuration is dumped with every secret field removed, not masked.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import SecretStr

from sensequant_assets.integrity import file_sha256
from sensequant_assets.settings import Settings

SNAPSHOT_COLUMNS = ("date", "symbol", "open", "high", "low", "close", "volume")
#: User files whose content shapes what a candidate trains on or is judged by.
INPUT_FILE_SETTINGS = (
    "corporate_actions_file",
    "sentiment_headlines_file",
    "holiday_file",
    "stress_windows_file",
)


def artifact_hashes(root: Path, exclude: Iterable[str] = ()) -> dict[str, str]:
    """SHA-256 of every file under ``root``, keyed by its POSIX path relative to ``root``."""
    skipped = set(exclude)
    return {
        path.relative_to(root).as_posix(): file_sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() not in skipped
    }


def code_version(repo: Path | None = None) -> dict[str, Any]:
    """The git commit and whether the working tree had uncommitted changes.

    Outside a git checkout (an installed wheel) both are None with the reason, rather than a
    guess.
    """
    where = repo or Path(__file__).resolve().parent
    try:
        commit = _git(where, "rev-parse", "HEAD")
        dirty = bool(_git(where, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError) as exc:
        return {"commit": None, "dirty": None, "reason": f"no git checkout: {exc}"}
    return {"commit": commit, "dirty": dirty}


def data_snapshot_hash(bars: pd.DataFrame) -> str:
    """SHA-256 of the input rows (``SNAPSHOT_COLUMNS``), independent of row order."""
    missing = [c for c in SNAPSHOT_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing} needed for the snapshot hash")
    ordered = bars[list(SNAPSHOT_COLUMNS)].sort_values(["symbol", "date"], kind="stable")
    ordered = ordered.assign(date=pd.to_datetime(ordered["date"]).dt.strftime("%Y-%m-%d"))
    return hashlib.sha256(ordered.to_csv(index=False).encode()).hexdigest()


def data_sources(*frames: pd.DataFrame) -> list[str]:
    """The sources stored bars came from (the ``source`` column ingest writes), sorted."""
    found = {str(v) for f in frames if "source" in f.columns for v in f["source"].unique()}
    return sorted(found)


def input_files(settings: Settings) -> dict[str, dict[str, str] | None]:
    """Path and SHA-256 of each input file that is set (None where unset): the configuration
    names a file, only its digest says which content the candidate read."""
    files: dict[str, dict[str, str] | None] = {}
    for name in INPUT_FILE_SETTINGS:
        path: Path | None = getattr(settings, name)
        files[name] = None if path is None else {"path": str(path), "sha256": file_sha256(path)}
    return files


def public_configuration(settings: Settings) -> dict[str, Any]:
    """The settings as JSON values, every secret field left out (not masked)."""
    secret = {
        name
        for name, field in type(settings).model_fields.items()
        if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
    }
    return settings.model_dump(mode="json", exclude=secret)


def _git(where: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(where), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()
