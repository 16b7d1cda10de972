"""When market data is stale: the NSE session whose bars should be stored by now.

The daily schedules ingest a session at 18:00 IST, after the 15:30 close, and a day's run for
every symbol takes seconds (minutes from Breeze). A session is due once
:data:`INGEST_DEADLINE` has passed on it; before that, and on weekends and NSE holidays, the
previous session is the one due. A wall-clock rule ("updated in the last 24 hours") would call
every Monday and every day after a holiday stale, and would call a store fresh that a backfill
of 2008 had just touched while today's session was missing.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sensequant_assets.calendar import MARKET_TIMEZONE, TradingCalendar

INGEST_DEADLINE = dt.time(19, 0)
"""IST time by which the 18:00 ingestion has stored the day's session."""


def due_session(
    calendar: TradingCalendar, now: dt.datetime, deadline: dt.time = INGEST_DEADLINE
) -> dt.date:
    """The latest session whose bars should be stored at ``now`` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("due_session needs a timezone-aware time")
    local = now.astimezone(ZoneInfo(MARKET_TIMEZONE))
    today = local.date()
    if calendar.is_trading_day(today) and local.time() >= deadline:
        return today
    return calendar.previous_session(today)
