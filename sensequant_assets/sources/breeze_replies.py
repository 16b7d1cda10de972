"""Reading what Breeze answers: a reply or an SDK exception sorted into success, retry or a
definite failure, and the candles of a reply as a frame.

Breeze reports quota, session and code errors in several shapes (an exception's text, a reply's
``Error``, a silent empty success), so the recognition is one set of rules, tested on the shapes
alone, apart from the calls (``breeze``). A message quotes at most ``ERROR_TEXT_LIMIT``
characters of a server's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from sensequant_assets.sources.base import OHLCV_COLUMNS
from sensequant_assets.sources.breeze_timeouts import network_failure

OUTPUT_COLUMNS = (*OHLCV_COLUMNS, "symbol")
TIMEOUT_SETTING = "SENSEQUANT_BREEZE_TIMEOUT_SECONDS"
# How much of a server's error text a message may quote.
ERROR_TEXT_LIMIT = 160

Kind = Literal["ok", "retry", "quota", "session", "fail"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    detail: str = ""


def one_line(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters, for quoting in a message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def network_detail(exc: BaseException, timeout: float) -> str | None:
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
    detail = network_detail(exc, timeout)
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
