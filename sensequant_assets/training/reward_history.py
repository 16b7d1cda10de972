"""The reward history: one JSON line per rewarded call, per symbol, kept across retrains.

A retrain reads the live rewards earlier production models earned (``training.rewards``
decays them by age); the live loop appends each matured day (``live.rewards``). The files
are append-only and every append is fsynced, so a crash loses at most the batch in flight and
never a recorded line; :data:`HISTORY_KEY` makes recording a day twice a no-op.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.atomic import append_durable
from sensequant_assets.features.labels import DOWN, NEUTRAL, UP

#: Where a reward came from: a production model's matured live call, a candidate's
#: cross-fitted (out-of-fold) call on a training row, or its final student's held-out call.
LIVE, CROSS_FIT, HOLDOUT = "live", "cross_fit", "holdout"


SOURCES = (LIVE, CROSS_FIT, HOLDOUT)


HISTORY_FIELDS = (
    "date", "symbol", "model_id", "source", "predicted", "realized_return", "reward",
)  # fmt: skip


#: One reward per call: re-recording the same call is a no-op (:func:`append_new_rewards`).
HISTORY_KEY = ("date", "symbol", "model_id", "source")


def append_reward_history(
    path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]
) -> int:
    """Append one JSON line per record (the fields of :data:`HISTORY_FIELDS`).

    The file is only ever appended to, in one write that is flushed and fsynced before
    returning, so history survives a crash right after the call. Every record is validated
    before anything is written, so a bad record never leaves a partial batch behind. Returns
    the number of lines written. For a history that may already hold some of the records
    (a day recorded again), use :func:`append_new_rewards`.
    """
    lines = [_history_line(record) for record in records]
    if not lines:
        return 0
    append_durable(Path(path), "".join(lines).encode("utf-8"))
    return len(lines)


def append_new_rewards(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Append the records whose :data:`HISTORY_KEY` the file does not hold yet; returns how
    many were written (0 when all were recorded before: re-running a day changes nothing).

    Reading the keys and appending happen under an exclusive ``flock`` on the file, so two
    runs recording the same day cannot both append it (a local file system: ``flock`` is not
    reliable over NFS). A line left torn by a crash is kept apart from the next batch by a
    newline and skipped by :func:`read_reward_history`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            existing = handle.read()
            seen = {_line_key(line) for line in existing.decode("utf-8").splitlines()}
            lines = []
            for record in records:
                line = _history_line(record)
                key = _line_key(line)
                if key not in seen:
                    seen.add(key)
                    lines.append(line)
            if not lines:
                return 0
            data = "".join(lines).encode("utf-8")
            if existing and not existing.endswith(b"\n"):
                data = b"\n" + data
            append_durable(target, data)
            return len(lines)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_reward_history(
    paths: Iterable[str | os.PathLike[str]], sources: Sequence[str] | None = None
) -> pd.DataFrame:
    """The reward records of the history files that exist among ``paths``, one row per
    :data:`HISTORY_KEY` (the first recorded wins), optionally of ``sources`` only.

    Columns are :data:`HISTORY_FIELDS`, ``date`` as a timestamp. Files written before
    records named their model and source (a candidate's held-out rewards) read as
    ``source="holdout"`` with an empty ``model_id``. A line that does not parse (torn by a
    crash mid-append) is skipped with a warning.
    """
    entries: list[dict[str, Any]] = []
    for path in map(Path, paths):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number} is not a JSON line; skipped", stacklevel=2)
                continue
            entry.setdefault("model_id", "")
            entry.setdefault("source", HOLDOUT)
            entries.append(entry)
    frame = pd.DataFrame(entries, columns=list(HISTORY_FIELDS))
    if sources is not None:
        frame = frame[frame["source"].isin(list(sources))]
    frame = frame.astype(
        {"symbol": str, "model_id": str, "source": str, "predicted": "int64",
         "realized_return": "float64", "reward": "float64"}
    )  # fmt: skip
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.drop_duplicates(list(HISTORY_KEY)).reset_index(drop=True)


def history_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a reward frame (columns :data:`HISTORY_FIELDS`) as records to append."""
    return frame[list(HISTORY_FIELDS)].to_dict("records")


def _history_line(record: Mapping[str, Any]) -> str:
    missing = [f for f in HISTORY_FIELDS if f not in record]
    if missing:
        raise ValueError(f"reward record lacks field(s) {missing}: {record!r}")
    predicted = int(record["predicted"])
    if predicted not in (DOWN, NEUTRAL, UP):
        raise ValueError(f"predicted must be {DOWN}, {NEUTRAL} or {UP}, got {predicted}")
    source = str(record["source"])
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    entry = {
        "date": _iso_date(record["date"]),
        "symbol": str(record["symbol"]),
        "model_id": str(record["model_id"]),
        "source": source,
        "predicted": predicted,
        "realized_return": float(record["realized_return"]),
        "reward": float(record["reward"]),
    }
    try:
        return json.dumps(entry, allow_nan=False) + "\n"
    except ValueError:
        raise ValueError(f"reward record has a non-finite number: {record!r}") from None


def _line_key(line: str) -> tuple[str, ...] | None:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    return tuple(str(entry.get(field, "")) for field in HISTORY_KEY)


def _iso_date(value: object) -> str:
    if isinstance(value, str):
        return dt.date.fromisoformat(value).isoformat()
    if isinstance(value, dt.date | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    raise ValueError(f"date must be a date or an ISO date string, got {value!r}")
