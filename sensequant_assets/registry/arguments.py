"""What callers hand the registry, checked and converted to the values its columns store.

Plain functions kept apart from the manager's transactions: each refuses a bad argument with a
:class:`RegistryError` naming it before any connection opens, and turns dates, paths, scores
and metrics (numpy values included) into the ISO strings and JSON the database holds;
``_stamp`` does the same for the registry's own timestamps.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from sensequant_assets.registry.errors import RegistryError
from sensequant_assets.registry.lifecycle import STAGES, STATUSES


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _require_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{name} must be a non-empty string, got {value!r}")
    return value.strip()


def _check_status(status: object) -> str:
    if status not in STATUSES:
        raise RegistryError(f"unknown status {status!r}; valid statuses: {', '.join(STATUSES)}")
    return str(status)


def _check_stage(stage: object) -> str:
    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
    return str(stage)


def _as_date(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError as exc:
            raise RegistryError(f"{name} must be an ISO date (YYYY-MM-DD), got {value!r}") from exc
    raise RegistryError(f"{name} must be a date or an ISO date string, got {value!r}")


def _as_path(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise RegistryError(f"{name} must be a path, got {value!r}")


def _as_symbols(symbols: object) -> list[str]:
    if isinstance(symbols, str | bytes) or not isinstance(symbols, Iterable):
        raise RegistryError(f"symbols must be a sequence of strings, got {symbols!r}")
    return [_require_text(symbol, "each symbol") for symbol in symbols]


def _as_score(score: object) -> float | None:
    if score is None:
        return None
    try:
        value = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"score must be a number, got {score!r}") from exc
    if not math.isfinite(value):
        raise RegistryError(f"score must be finite, got {score!r}")
    return value


def _json_safe(value: Any, where: str = "metrics") -> Any:
    """Plain JSON values; numpy scalars/arrays unwrapped, non-finite floats become None."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item, where) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    for unwrap in ("item", "tolist"):  # numpy scalars, then arrays
        method = getattr(value, unwrap, None)
        if callable(method):
            try:
                return _json_safe(method(), where)
            except (TypeError, ValueError):
                continue
    raise RegistryError(f"{where}: {type(value).__name__} value {value!r} is not JSON-serialisable")


def _as_metrics(metrics: object) -> dict[str, Any] | None:
    if metrics is None:
        return None
    if not isinstance(metrics, Mapping):
        raise RegistryError(f"metrics must be a mapping, got {type(metrics).__name__}")
    return _json_safe(metrics)
