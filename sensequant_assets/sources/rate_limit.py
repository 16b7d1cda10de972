"""A call budget shared by every process and run that uses one Breeze API key.

Breeze allows 100 calls a minute and 5,000 a day per key, whoever makes them: a Dagster run, a
second run started by a sensor and a notebook all draw on the same quota. An in-memory limiter
cannot see the others, so the ledger is a table every caller writes to inside one write
transaction before each call: a small SQLite file locked with ``BEGIN IMMEDIATE`` (embedded),
or the ``calls`` table of the deployment's Postgres database behind an advisory lock
(:mod:`sensequant_assets.database`). A ledger that stays locked past ``busy_timeout``, or
cannot be read, is a ``LedgerUnavailable`` (a ``SourceError``), never a bare driver error.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from sensequant_assets.database import (
    Location,
    Tx,
    create_schema,
    database_url,
    is_busy,
    reason,
    shown,
    transaction,
)
from sensequant_assets.sources.base import SourceError

IST = ZoneInfo("Asia/Kolkata")
WINDOW_SECONDS = 60.0
KEEP_SECONDS = 2 * 86_400.0
LOCK_KEY = 0x5E45_CA11
"""The Postgres advisory lock every ledger writer holds (the registry's is another)."""
TABLE = "calls"

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} "
    "(ts DOUBLE PRECISION NOT NULL, label TEXT NOT NULL DEFAULT '')",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts)",
)


class QuotaExhausted(SourceError):
    """The day's call budget is spent; waiting will not help before midnight IST."""


class LedgerUnavailable(SourceError):
    """The call ledger stayed locked by another process, or could not be read or written."""


@dataclass(frozen=True)
class LedgerStats:
    calls_today: int
    calls_last_minute: int
    peak_minute_today: int


def ist_day_start(timestamp: float) -> float:
    """Epoch seconds of the Asia/Kolkata midnight that starts the day containing ``timestamp``."""
    local = dt.datetime.fromtimestamp(timestamp, IST)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def peak_in_window(timestamps: Sequence[float], window: float = WINDOW_SECONDS) -> int:
    """Most timestamps falling in any half-open ``window``-second interval."""
    ordered = sorted(timestamps)
    peak, first = 0, 0
    for last, ts in enumerate(ordered):
        while ts - ordered[first] >= window:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


class CallLedger:
    """Grants permission for one API call at a time against per-minute and per-day budgets.

    ``margin`` widens the minute window slightly: the ledger stamps a call when it is granted,
    the server when the request arrives, and uneven network delay must not let two calls that
    were 60 s apart here land less than 60 s apart there.
    """

    def __init__(
        self,
        location: Location,
        per_minute: int = 100,
        per_day: int = 5000,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        *,
        margin: float = 1.0,
        busy_timeout: float = 60.0,
    ):
        if per_minute <= 0 or per_day <= 0 or busy_timeout < 0:
            raise ValueError("per_minute and per_day must be positive, busy_timeout >= 0")
        self.url = database_url(location)
        self.where = shown(self.url)
        self.per_minute = per_minute
        self.per_day = per_day
        self._clock = clock
        self._sleep = sleep
        self._window = WINDOW_SECONDS + margin
        self._busy_timeout = busy_timeout
        if self.url.get_backend_name() == "sqlite":
            Path(str(self.url.database)).parent.mkdir(parents=True, exist_ok=True)
        with self._unavailable_as_source_error("set up"), self._write() as tx:
            create_schema(tx)
            for statement in _SCHEMA:
                tx.ddl(statement)

    def __repr__(self) -> str:
        return f"CallLedger({self.where!r}, per_minute={self.per_minute}, per_day={self.per_day})"

    def _write(self) -> AbstractContextManager[Tx]:
        return transaction(self.url, write=True, lock_key=LOCK_KEY, timeout=self._busy_timeout)

    @contextmanager
    def _unavailable_as_source_error(self, action: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.DBAPIError as exc:
            if is_busy(exc):
                raise LedgerUnavailable(
                    f"the Breeze call ledger {self.where} stayed locked for "
                    f"{self._busy_timeout:g} s while trying to {action}: another process is "
                    "holding its write lock. Re-run when that process is done (or stop it if "
                    "it is stuck)."
                ) from exc
            raise LedgerUnavailable(
                f"the Breeze call ledger {self.where} could not {action} ({reason(exc)}); check "
                "that it is reachable, readable and writable (an SQLite file can be moved away "
                "to start a fresh ledger)."
            ) from exc

    def acquire(self, label: str = "") -> None:
        """Record one call, waiting while the minute budget is full.

        Raises ``QuotaExhausted`` when the Asia/Kolkata day's budget is used up and
        ``LedgerUnavailable`` when the ledger stays locked past ``busy_timeout``.
        """
        while True:
            with self._unavailable_as_source_error(f"grant a call for {label or 'a caller'}"):
                wait = self._try_acquire(label)
            if wait is None:
                return
            self._sleep(wait)

    def _try_acquire(self, label: str) -> float | None:
        """Record the call and return None, or return how long to wait before trying again."""
        with self._write() as tx:
            now = self._clock()
            today = tx.scalar(
                f"SELECT COUNT(*) FROM {TABLE} WHERE ts >= :day", day=ist_day_start(now)
            )
            if today >= self.per_day:
                raise QuotaExhausted(self._quota_message(today, now, label))
            recent = [
                row["ts"]
                for row in tx.all(
                    f"SELECT ts FROM {TABLE} WHERE ts > :since ORDER BY ts",
                    since=now - self._window,
                )
            ]
            if len(recent) >= self.per_minute:
                # The call that must leave the window before one more fits in it.
                leaving = recent[len(recent) - self.per_minute]
                return max(leaving + self._window - now, 0.01)
            tx.insert(TABLE, {"ts": now, "label": label})
            tx.run(f"DELETE FROM {TABLE} WHERE ts < :old", old=now - KEEP_SECONDS)
            return None

    def _quota_message(self, used: int, now: float, label: str) -> str:
        reset = ist_day_start(now) + 86_400.0
        hours, rest = divmod(int(reset - now), 3600)
        what = f" for {label}" if label else ""
        return (
            f"Breeze daily call budget exhausted{what}: {used} of {self.per_day} calls used "
            f"today (Asia/Kolkata, ledger {self.where}); it resets at midnight IST, in "
            f"{hours}h {rest // 60:02d}m. Re-run after that; rows already stored are kept."
        )

    def stats(self) -> LedgerStats:
        """Calls today, calls in the last minute and the busiest 60 s window today."""
        now = self._clock()
        day_start = ist_day_start(now)
        read = transaction(self.url, write=False, lock_key=LOCK_KEY, timeout=self._busy_timeout)
        with self._unavailable_as_source_error("read its counts"), read as tx:
            stamps = [
                row["ts"]
                for row in tx.all(
                    f"SELECT ts FROM {TABLE} WHERE ts >= :since ORDER BY ts",
                    since=min(day_start, now - WINDOW_SECONDS),
                )
            ]
        today = [ts for ts in stamps if ts >= day_start]
        last_minute = sum(1 for ts in stamps if now - ts < WINDOW_SECONDS)
        return LedgerStats(len(today), last_minute, peak_in_window(today))
