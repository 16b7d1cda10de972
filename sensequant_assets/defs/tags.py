"""Run tags that scope a candidate run or an ingest; Dagit users can set them on a launch.

A run tagged with ``sensequant/candidate`` writes that candidate id (so every stage, and a
failure handler, knows the bundle before it exists); ``sensequant/symbols`` and
``sensequant/start_date`` / ``sensequant/end_date`` restrict the student and its evaluation to
those symbols and dates. Without them a candidate covers every stored symbol and date.
``sensequant/owner`` is the token a ``historical-run`` command reserves its candidate id with
and puts on every run it issues (see :func:`candidate_owner`).
``sensequant/allow_shrink`` and ``sensequant/allow_missing_sessions`` (``true``) let one ingest
run do what the settings of the same names refuse by default. ``sensequant/retrain`` says why a
schedule or sensor launched a candidate run, ``sensequant/new_window`` which window a
new-window teacher run trains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sensequant_assets.sources.ingest import IngestPolicy

CANDIDATE_TAG = "sensequant/candidate"
SYMBOLS_TAG = "sensequant/symbols"
START_TAG = "sensequant/start_date"
END_TAG = "sensequant/end_date"
HISTORICAL_RUN_TAG = "sensequant/historical_run"
DRYRUN_TAG = "sensequant/dryrun"
OWNER_TAG = "sensequant/owner"
ALLOW_SHRINK_TAG = "sensequant/allow_shrink"
ALLOW_MISSING_SESSIONS_TAG = "sensequant/allow_missing_sessions"
NEW_WINDOW_TAG = "sensequant/new_window"
RETRAIN_TAG = "sensequant/retrain"
SEARCH_TAG = "sensequant/search"


@dataclass(frozen=True)
class CandidateScope:
    candidate_id: str | None
    symbols: tuple[str, ...] | None
    start: dt.date | None
    end: dt.date | None

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> CandidateScope:
        symbols = tags.get(SYMBOLS_TAG)
        return cls(
            candidate_id=tags.get(CANDIDATE_TAG) or None,
            symbols=tuple(s for s in symbols.split(",") if s) if symbols else None,
            start=_date(tags, START_TAG),
            end=_date(tags, END_TAG),
        )


def candidate_owner(tags: Mapping[str, str], run_id: str, root_run_id: str | None) -> str:
    """Who owns the candidate id a run reserves (:mod:`~sensequant_assets.registry.reservation`):
    the command that tagged it, else the run itself (its root run, so a re-execution of a
    failed run still owns the id the original reserved)."""
    return tags.get(OWNER_TAG) or root_run_id or run_id


def scope_tags(
    candidate_id: str, symbols: Sequence[str], start: dt.date, end: dt.date
) -> dict[str, str]:
    return {
        CANDIDATE_TAG: candidate_id,
        SYMBOLS_TAG: ",".join(symbols),
        START_TAG: start.isoformat(),
        END_TAG: end.isoformat(),
    }


def _date(tags: Mapping[str, str], key: str) -> dt.date | None:
    value = tags.get(key)
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"run tag {key}={value!r} is not a date (YYYY-MM-DD)") from None


def ingest_policy(tags: Mapping[str, str], default: IngestPolicy) -> IngestPolicy:
    """The settings' policy, loosened (never tightened) by the run's allow tags."""
    return IngestPolicy(
        allow_shrink=default.allow_shrink or _flag(tags, ALLOW_SHRINK_TAG),
        allow_missing_sessions=(
            default.allow_missing_sessions or _flag(tags, ALLOW_MISSING_SESSIONS_TAG)
        ),
    )


def allow_tags(allow_shrink: bool, allow_missing_sessions: bool) -> dict[str, str]:
    """The tags a command adds to its ingest runs for its --allow-* flags."""
    tags = {ALLOW_SHRINK_TAG: "true"} if allow_shrink else {}
    if allow_missing_sessions:
        tags[ALLOW_MISSING_SESSIONS_TAG] = "true"
    return tags


def search_requested(tags: Mapping[str, str]) -> bool:
    """Whether a candidate run's tags ask for the hyperparameter search."""
    return _flag(tags, SEARCH_TAG)


def search_tags() -> dict[str, str]:
    """The tags of a candidate run that runs the hyperparameter search."""
    return {SEARCH_TAG: "true"}


def _flag(tags: Mapping[str, str], key: str) -> bool:
    value = tags.get(key, "").strip().lower()
    if value not in ("", "true", "false"):
        raise ValueError(f"run tag {key}={tags[key]!r} must be true or false")
    return value == "true"
