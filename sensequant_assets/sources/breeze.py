"""ICICI Direct Breeze daily bars through the official ``breeze-connect`` SDK.

The SDK is awkward to host, so it is imported lazily, on first use, by ``breeze_sdk``; what
Breeze answers is read by ``breeze_replies``; what a fetch raises is ``breeze_errors``.

Quota is the scarce resource (100 calls/minute, 5,000/day, 1,000 candles per call), so one
call fetches up to 1,000 candles and every call is first granted by the shared ``CallLedger``.

Every SDK network call, the import-time download included, is bounded by ``timeout_seconds``
(``breeze_timeouts``); transient failures are retried a bounded number of times with capped,
jittered backoff. Error messages are one line naming the symbol and range, with credentials
blanked and never a whole server reply quoted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.sources.backoff import Backoff
from sensequant_assets.sources.breeze_errors import (
    BreezeRequestFailed,
    BreezeSessionExpired,
    BreezeUnknownCode,
    session_help,
)
from sensequant_assets.sources.breeze_replies import (
    Outcome,
    candles_frame,
    classify_exception,
    classify_reply,
    one_line,
)
from sensequant_assets.sources.breeze_sdk import SDK_LOCK, import_sdk, point_config, sdk_urls
from sensequant_assets.sources.breeze_timeouts import bound_sdk_calls
from sensequant_assets.sources.rate_limit import CallLedger, LedgerUnavailable, QuotaExhausted
from sensequant_assets.universe import Universe

logger = logging.getLogger(__name__)


class _Secret:
    """A credential that never shows itself in a repr, a log record or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'**********'"

    __str__ = __repr__


def _candle_day(candle: dict[str, Any]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(candle.get("datetime", ""))[:10])
    except ValueError:
        return None


def _candle_key(candle: Any) -> str:
    return json.dumps(candle, sort_keys=True, default=str)


def _v2_date(day: dt.date) -> str:
    return f"{day.isoformat()}T07:00:00.000Z"


# --- the source --------------------------------------------------------------------------


class BreezeSource:
    """Daily NSE bars from Breeze ``get_historical_data_v2``, at most one call per 1,000 candles.

    ``calls_made`` counts historical-data requests sent (retries included), not the one
    session call each source makes on first use. ``timeout_seconds`` bounds each network call;
    a transient failure is retried up to ``max_retries`` times, waiting ``backoff_seconds``
    doubled per attempt, capped at ``backoff_max_seconds`` and jittered by ``random``.
    """

    name = "breeze"
    remote = True

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        session_token: str,
        universe: Universe,
        calendar: TradingCalendar,
        ledger: CallLedger,
        sdk_home: Path,
        base_url: str | None = None,
        chunk_candles: int = 1000,
        max_retries: int = 5,
        backoff_seconds: float = 2.0,
        backoff_max_seconds: float = 60.0,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random.random,
    ):
        if chunk_candles <= 0 or max_retries < 0 or timeout_seconds <= 0:
            raise ValueError(
                "chunk_candles and timeout_seconds must be positive, max_retries non-negative"
            )
        self._api_key = _Secret(api_key)
        self._api_secret = _Secret(api_secret)
        self._session_token = _Secret(session_token)
        self._universe = universe
        self._calendar = calendar
        self._ledger = ledger
        self._sdk_home = Path(sdk_home)
        self._base_url = base_url
        self._chunk_candles = chunk_candles
        self._max_retries = max_retries
        self._backoff = Backoff(backoff_seconds, backoff_max_seconds, random=random)
        self._timeout = timeout_seconds
        self._sleep = sleep
        self._sdk: ModuleType | None = None
        self._client: Any = None
        self._lock = threading.RLock()
        self.calls_made = 0

    def __repr__(self) -> str:
        where = self._base_url or "ICICI"
        return f"BreezeSource(endpoint={where!r}, sdk_home={str(self._sdk_home)!r})"

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        nse = self._universe.get(symbol).symbol
        code = self._universe.isec_code(nse)
        if not self._calendar.sessions(start, end):
            logger.info("breeze %s (%s) %s..%s: no NSE sessions, no call", nse, code, start, end)
            return candles_frame([], nse, code)
        candles: list[dict[str, Any]] = []
        seen: set[str] = set()
        to: dt.date | None = end
        earliest: dt.date | None = None
        first = True
        while to is not None:
            chunk = self._history(nse, code, start, to)
            if first and not chunk:
                raise BreezeUnknownCode(self._unknown_code_message(nse, code, start, end))
            first = False
            # Drop only candles already received in an earlier chunk: a duplicate inside one
            # reply is the server's doing and is left for the guardrails to flag.
            candles.extend(c for c in chunk if _candle_key(c) not in seen)
            seen.update(_candle_key(c) for c in chunk)
            to, earliest = self._next_end(chunk, start, earliest)
        return candles_frame(candles, nse, code)

    def _next_end(
        self, chunk: list[dict[str, Any]], start: dt.date, previous: dt.date | None
    ) -> tuple[dt.date | None, dt.date | None]:
        """The ``to_date`` of the next call (None to stop) and the earliest day seen so far.

        v2 returns the last ``chunk_candles`` candles up to ``to_date``, so a full reply that
        starts after ``start`` means older candles remain.
        """
        days = [d for d in map(_candle_day, chunk) if d is not None]
        earliest = min(days) if days else previous
        if len(chunk) < self._chunk_candles or earliest is None or earliest <= start:
            return None, earliest
        if previous is not None and earliest >= previous:
            logger.warning("breeze: reply did not reach back past %s; stopping", previous)
            return None, earliest
        next_end = earliest - dt.timedelta(days=1)
        return (next_end if self._calendar.sessions(start, next_end) else None), earliest

    # --- calls ---------------------------------------------------------------------------

    def _session(self, what: str) -> tuple[ModuleType, Any]:
        """The imported SDK and a client with an open session, created on first use."""
        with self._lock:
            if self._client is None:
                sdk = import_sdk(self._sdk_home, sdk_urls(self._base_url), self._timeout, what)
                client = sdk.BreezeConnect(api_key=self._api_key.reveal())

                def generate() -> None:
                    client.generate_session(
                        api_secret=self._api_secret.reveal(),
                        session_token=self._session_token.reveal(),
                    )

                self._with_retries(
                    sdk, client, generate, lambda _: Outcome("ok"), f"session opening for {what}"
                )
                logger.info("breeze: session opened")
                self._sdk, self._client = sdk, client
            return self._sdk, self._client

    def _history(self, nse: str, code: str, start: dt.date, to: dt.date) -> list[dict[str, Any]]:
        """One chunk of candles (at most ``chunk_candles``, counting back from ``to``)."""
        what = f"historical data for NSE symbol {nse} (ICICI code {code}), {start} to {to}"
        sdk, client = self._session(what)

        def request() -> Any:
            self.calls_made += 1
            return client.get_historical_data_v2(
                interval="1day",
                from_date=_v2_date(start),
                to_date=_v2_date(to),
                stock_code=code,
                exchange_code="NSE",
                product_type="cash",
            )

        reply, attempts = self._with_retries(sdk, client, request, classify_reply, what, nse)
        chunk = reply["Success"]
        logger.info(
            "breeze %s (%s) %s..%s: %d candles (attempt %d)",
            nse,
            code,
            start,
            to,
            len(chunk),
            attempts,
        )
        return chunk

    def _with_retries(
        self,
        sdk: ModuleType,
        client: Any,
        call: Callable[[], Any],
        judge: Callable[[Any], Outcome],
        what: str,
        label: str = "session",
    ) -> tuple[Any, int]:
        """Run ``call`` until ``judge`` accepts it; returns the result and attempts used.

        Each attempt is granted by the ledger first. Transient failures (per-minute limit,
        5xx or non-JSON replies, timeouts, dropped connections) back off; quota, session and
        definite errors raise at once.
        """
        attempts = self._max_retries + 1
        for attempt in range(attempts):
            try:
                self._ledger.acquire(f"breeze:{label}")
            except LedgerUnavailable as exc:
                raise LedgerUnavailable(f"Breeze {what}: {exc}") from exc.__cause__
            try:
                result = self._call_sdk(sdk, call)
            except Exception as exc:
                outcome = classify_exception(exc, self._timeout)
            else:
                outcome = judge(result)
            if outcome.kind == "ok":
                return result, attempt + 1
            outcome = Outcome(outcome.kind, one_line(self._redact(outcome.detail, client)))
            logger.warning(
                "breeze %s: %s (attempt %d of %d)", what, outcome.detail, attempt + 1, attempts
            )
            self._raise_final(outcome, what)
            if attempt + 1 < attempts:
                self._sleep(self._backoff.delay(attempt))
        hint = (
            "; a persistent 'Invalid User Details' usually means the session token expired"
            if "invalid user details" in outcome.detail.lower()
            else ""
        )
        raise BreezeRequestFailed(
            f"Breeze {what} failed after {attempts} attempt(s); last error: {outcome.detail}{hint}"
        )

    def _call_sdk(self, sdk: ModuleType, call: Callable[[], Any]) -> Any:
        # Sources aimed at different servers share the one imported SDK config module.
        with SDK_LOCK:
            point_config(sdk.config, sdk_urls(self._base_url))
            bound_sdk_calls(sdk, self._timeout)
            return call()

    def _raise_final(self, outcome: Outcome, what: str) -> None:
        """Raise for outcomes that no amount of retrying fixes."""
        if outcome.kind == "session":
            raise BreezeSessionExpired(session_help(outcome.detail, what))
        if outcome.kind == "quota":
            used = self._ledger.stats().calls_today
            raise QuotaExhausted(
                f"Breeze refused {what}: {outcome.detail.strip()} (the daily limit; the local "
                f"ledger counts {used} calls today). The quota resets at midnight IST; re-run "
                "after that, rows already stored are kept."
            )
        if outcome.kind == "fail":
            raise BreezeRequestFailed(f"Breeze refused {what}: {outcome.detail}")

    def _redact(self, text: str, client: Any) -> str:
        """Blank out credentials, including the session key the SDK derives from the token."""
        values = [
            self._api_key.reveal(),
            self._api_secret.reveal(),
            self._session_token.reveal(),
            getattr(client, "session_key", None) or "",
            getattr(getattr(client, "api_handler", None), "base64_session_token", None) or "",
        ]
        for value in values:
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text

    def _unknown_code_message(self, nse: str, code: str, start: dt.date, end: dt.date) -> str:
        return (
            f"Breeze returned no candles for NSE symbol {nse} using ICICI code {code!r} "
            f"between {start} and {end}, although NSE traded on those days. Breeze answers an "
            "unknown stock code with an empty success, so the code is probably wrong or "
            "outdated (ICICI codes differ from NSE symbols: RELIANCE is RELIND). Refresh the "
            f"codes: find the EQ row whose ExchangeCode is {nse} in ICICI's NSEScripMaster.txt "
            "(inside SecurityMaster.zip) and set SENSEQUANT_SCRIP_MASTER to that file. If the "
            "stock listed after this range, start the range at its listing date."
        )
