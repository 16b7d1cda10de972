"""ICICI Direct Breeze daily bars through the official ``breeze-connect`` SDK.

The SDK is awkward to host: importing it downloads the security master over the network,
resolves ``import config`` against whatever module of that name is loaded, and creates
``./logs/`` in the current directory. So it is imported lazily, on first use, with its own
``config.py`` pinned in ``sys.modules`` (endpoint URLs patched for a fake server or proxy) and
the working directory switched to ``sdk_home``.

Quota is the scarce resource (100 calls/minute, 5,000/day, 1,000 candles per call), so one
call fetches up to 1,000 candles and every call is first granted by the shared ``CallLedger``.

Every SDK network call, the import-time download included, is bounded by ``timeout_seconds``
(``breeze_timeouts``); transient failures are retried a bounded number of times with capped,
jittered backoff. Error messages are one line naming the symbol and range, with credentials
blanked and never a whole server reply quoted.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pandas as pd

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.sources.backoff import Backoff
from sensequant_assets.sources.base import OHLCV_COLUMNS, SourceError
from sensequant_assets.sources.breeze_logs import rotate_sdk_logs
from sensequant_assets.sources.breeze_timeouts import (
    bound_sdk_calls,
    bounded_import,
    network_failure,
)
from sensequant_assets.sources.rate_limit import CallLedger, LedgerUnavailable, QuotaExhausted
from sensequant_assets.universe import Universe

__all__ = [
    "BreezeRequestFailed",
    "BreezeSessionExpired",
    "BreezeSource",
    "BreezeUnknownCode",
    "QuotaExhausted",
]

logger = logging.getLogger(__name__)

LOGIN_URL = "https://api.icicidirect.com/apiuser/login?api_key=<your BREEZE_API_KEY>"
OUTPUT_COLUMNS = (*OHLCV_COLUMNS, "symbol")
URL_CONSTANTS = ("API_URL", "BREEZE_NEW_URL", "SECURITY_MASTER_URL")
SDK_MODULE = "breeze_connect.breeze_connect"
TIMEOUT_SETTING = "SENSEQUANT_BREEZE_TIMEOUT_SECONDS"
# How much of a server's error text a message may quote.
ERROR_TEXT_LIMIT = 160

# Guards the process-wide state the SDK depends on: sys.modules["config"], the cwd during
# import, and the URL constants of its config module while a call is in flight.
_SDK_LOCK = threading.RLock()


class BreezeSessionExpired(SourceError):
    """The session token was rejected; only a human can issue a new one."""


class BreezeUnknownCode(SourceError):
    """Breeze returned nothing for a range with sessions: the ICICI code is probably wrong."""


class BreezeRequestFailed(SourceError):
    """A call kept failing after every retry, or failed in a way retrying cannot fix."""


def session_help(detail: str, what: str) -> str:
    return (
        f"Breeze rejected the session for {what} ({detail}). Session tokens are issued daily "
        f"and expire at midnight IST: log in at {LOGIN_URL}, copy the API_Session value into "
        "BREEZE_SESSION_TOKEN, and re-run."
    )


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


# --- loading the SDK ---------------------------------------------------------------------


def _sdk_config_path() -> Path:
    spec = importlib.util.find_spec("breeze_connect")
    if spec is None or not spec.submodule_search_locations:
        raise BreezeRequestFailed("breeze-connect is not installed: pip install breeze-connect")
    return Path(next(iter(spec.submodule_search_locations))) / "config.py"


def _load_sdk_config() -> ModuleType:
    """A fresh copy of the SDK's own ``config.py`` (it only defines constants and enums)."""
    spec = importlib.util.spec_from_file_location("config", _sdk_config_path())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _default_urls() -> dict[str, str]:
    config = _load_sdk_config()
    return {name: getattr(config, name) for name in URL_CONSTANTS}


def sdk_urls(base_url: str | None) -> dict[str, str]:
    """The SDK's endpoint constants for ``base_url`` (ICICI's own when None)."""
    if base_url is None:
        return _default_urls()
    base = base_url.rstrip("/")
    return {
        "API_URL": f"{base}/breezeapi/api/v1/",
        "BREEZE_NEW_URL": f"{base}/api/v2/",
        "SECURITY_MASTER_URL": f"{base}/SecurityMaster.zip",
    }


def _point_config(config: ModuleType, urls: dict[str, str]) -> None:
    for name, value in urls.items():
        setattr(config, name, value)


def _import_sdk(sdk_home: Path, urls: dict[str, str], timeout: float, what: str) -> ModuleType:
    """Import the SDK once per process, aimed at ``urls``, with its logs under ``sdk_home``.

    The import downloads the security master; ``timeout`` bounds that download.
    """
    with _SDK_LOCK:
        loaded = sys.modules.get(SDK_MODULE)
        if loaded is not None:
            return loaded
        config = _load_sdk_config()
        _point_config(config, urls)
        sdk_dir = str(_sdk_config_path().parent)
        sdk_home.mkdir(parents=True, exist_ok=True)
        previous = sys.modules.get("config")
        path_before = list(sys.path)
        cwd = os.getcwd()
        sys.modules["config"] = config
        try:
            os.chdir(sdk_home)
            with bounded_import(timeout):
                module = importlib.import_module(SDK_MODULE)
            rotate_sdk_logs()
            return module
        except Exception as exc:
            reason = _network_detail(exc, timeout) or one_line(str(exc))
            raise BreezeRequestFailed(
                f"Breeze {what}: could not import breeze-connect, which downloads "
                f"{urls['SECURITY_MASTER_URL']} at import time: {reason}"
            ) from exc
        finally:
            os.chdir(cwd)
            if previous is None:
                sys.modules.pop("config", None)
            else:
                sys.modules["config"] = previous
            # The SDK prepends its folder to sys.path so that a bare `import config` finds it.
            if sdk_dir not in path_before:
                sys.path[:] = [p for p in sys.path if p != sdk_dir]


# --- reading replies ---------------------------------------------------------------------

Kind = Literal["ok", "retry", "quota", "session", "fail"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    detail: str = ""


def one_line(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters, for quoting in a message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _network_detail(exc: BaseException, timeout: float) -> str | None:
    """What a network failure looks like in a message, or None for any other exception."""
    failure = network_failure(exc)
    if failure == "timeout":
        return f"no reply within {timeout:g} s ({TIMEOUT_SETTING})"
    if failure == "network":
        return "the connection failed or was dropped before a reply"
    return None


def recognise_error(text: str) -> Outcome | None:
    """The known Breeze errors, whether the SDK raised them or the server sent them."""
    lowered = text.lower()
    if "limit exceed" in lowered and "day" in lowered:
        return Outcome("quota", text)
    if "limit exceed" in lowered and "minute" in lowered:
        return Outcome("retry", text)
    if "check session key" in lowered or (
        "session" in lowered and ("expired" in lowered or "invalid" in lowered)
    ):
        return Outcome("session", text)
    if "check api key" in lowered:
        return Outcome("fail", f"{text} (check BREEZE_API_KEY)")
    return None


def classify_exception(exc: BaseException, timeout: float) -> Outcome:
    """An SDK exception: timeouts, network errors and non-JSON bodies are worth another try."""
    detail = _network_detail(exc, timeout)
    if detail is not None:
        return Outcome("retry", detail)
    return recognise_error(str(exc)) or Outcome("retry", str(exc))


def classify_reply(reply: Any) -> Outcome:
    """Sort a ``get_historical_data_v2`` reply into success, retry or a definite failure.

    Details quote at most the reply's own ``Error`` text, never the reply itself, which may
    echo request headers (the API key, the session token). The caller redacts and shortens
    the detail, in that order, so that no cut can leave part of a credential behind.
    """
    if not isinstance(reply, dict):
        return Outcome("retry", f"unexpected reply of type {type(reply).__name__}")
    error = str(reply.get("Error") or "")
    if not error and isinstance(reply.get("Success"), list):
        return Outcome("ok")
    try:
        status = int(reply.get("Status"))
    except (TypeError, ValueError):
        status = 0
    known = recognise_error(error) if error else None
    if known is not None:
        return known
    kind: Kind = "retry" if status >= 500 else "fail"
    return Outcome(kind, f"Status {status}: {error or 'no error message'}")


def _candle_day(candle: dict[str, Any]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(candle.get("datetime", ""))[:10])
    except ValueError:
        return None


def _candle_key(candle: Any) -> str:
    return json.dumps(candle, sort_keys=True, default=str)


def _v2_date(day: dt.date) -> str:
    return f"{day.isoformat()}T07:00:00.000Z"


def candles_frame(candles: Iterable[dict[str, Any]], symbol: str, code: str) -> pd.DataFrame:
    """Rows as received, sorted by date; ``symbol`` keeps a foreign stock_code visible."""
    rows = [
        {
            "date": c.get("datetime"),
            "open": c.get("open"),
            "high": c.get("high"),
            "low": c.get("low"),
            "close": c.get("close"),
            "volume": c.get("volume"),
            "symbol": symbol
            if str(c.get("stock_code", "")).strip().upper() == code.upper()
            else c.get("stock_code"),
        }
        for c in candles
    ]
    frame = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
    order = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
    return (
        frame.assign(_order=order)
        .sort_values("_order", kind="stable", na_position="last")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


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
                sdk = _import_sdk(self._sdk_home, sdk_urls(self._base_url), self._timeout, what)
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
        with _SDK_LOCK:
            _point_config(sdk.config, sdk_urls(self._base_url))
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
