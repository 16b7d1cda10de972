"""Daily headline sentiment per symbol, from a user-supplied file of dated headlines.

Scoring uses VADER, whose lexicon ships inside the ``vaderSentiment`` wheel: nothing is
downloaded at run time, so the score of a headline is reproducible on an offline machine.
The daily score is the mean VADER compound score (−1 … +1) of that symbol's headlines.
Headlines dated on a non-trading day belong to the next session, because that is the first
session whose prices can react to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from sensequant_assets.calendar import TradingCalendar

HEADLINE_COLUMNS = ("date", "symbol", "headline")
#: The story's review checklist asks for headlines on more than 80% of sessions.
REVIEW_COVERAGE = 0.8
COVERAGE_DEFINITION = (
    "share of the NSE sessions of the range on which sentiment_snapshots holds a score for the "
    "symbol, i.e. at least one headline dated that session or on the non-session days just "
    "before it; overall pools every symbol-session"
)


class HeadlineFileError(ValueError):
    pass


@lru_cache(maxsize=1)
def _analyzer():  # type: ignore[no-untyped-def]
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def read_headlines(path: Path) -> pd.DataFrame:
    """Read ``date,symbol,headline`` (case-insensitive columns) and check every row."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as exc:
        raise HeadlineFileError(f"cannot read headlines file {path}: {exc}") from exc
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in HEADLINE_COLUMNS if c not in frame.columns]
    if missing:
        raise HeadlineFileError(f"headlines file {path} lacks column(s) {missing}")
    dates = pd.to_datetime(frame["date"].str.strip(), errors="coerce", format="mixed")
    bad = frame.index[dates.isna()]
    if len(bad):
        row = int(bad[0])
        raise HeadlineFileError(
            f"{path}: row {row + 2}, column date: {frame.at[row, 'date']!r} is not a date "
            f"({len(bad)} bad row(s) in total)"
        )
    return pd.DataFrame(
        {
            "date": dates.dt.tz_localize(None).dt.normalize()
            if dates.dt.tz is None
            else dates.dt.tz_convert("Asia/Kolkata").dt.tz_localize(None).dt.normalize(),
            "symbol": frame["symbol"].str.strip().str.upper(),
            "headline": frame["headline"].str.strip(),
        }
    )


def score_headlines(headlines: pd.DataFrame, calendar: TradingCalendar) -> pd.DataFrame:
    """One row per (session date, symbol): mean compound score and headline count."""
    scored = headlines[headlines["headline"] != ""].copy()
    if scored.empty:
        return pd.DataFrame(columns=["date", "symbol", "sentiment_score", "headline_count"])
    analyzer = _analyzer()
    scored["score"] = [analyzer.polarity_scores(text)["compound"] for text in scored["headline"]]
    scored["date"] = [_next_session(d.date(), calendar) for d in scored["date"]]
    daily = (
        scored.groupby(["date", "symbol"])["score"]
        .agg(sentiment_score="mean", headline_count="size")
        .reset_index()
    )
    daily["date"] = pd.to_datetime(daily["date"])
    return daily


def _next_session(day: dt.date, calendar: TradingCalendar) -> dt.date:
    while not calendar.is_trading_day(day):
        day += dt.timedelta(days=1)
    return day


def for_keys(daily: pd.DataFrame, keys: Sequence[tuple[dt.date, str]]) -> pd.DataFrame:
    """The scored rows whose (date, symbol) is among ``keys``."""
    requested = set(keys)
    mask = [(d.date(), s) in requested for d, s in zip(daily["date"], daily["symbol"], strict=True)]
    return daily[mask].reset_index(drop=True)


def coverage(daily: pd.DataFrame, keys: Sequence[tuple[dt.date, str]]) -> float:
    """Share of requested (date, symbol) pairs that received a score."""
    if not keys:
        return 0.0
    have = set(zip(daily["date"].dt.date, daily["symbol"], strict=True))
    return sum(1 for key in keys if key in have) / len(keys)


def coverage_summary(
    daily: pd.DataFrame, symbols: Sequence[str], sessions: Sequence[dt.date]
) -> dict[str, Any]:
    """Coverage (:data:`COVERAGE_DEFINITION`) per symbol and overall, each flagged when under
    :data:`REVIEW_COVERAGE`; ``daily`` is stored ``sentiment_snapshots`` rows."""
    wanted = set(sessions)
    have: set[tuple[dt.date, str]] = set()
    if not daily.empty:
        have = set(zip(pd.to_datetime(daily["date"]).dt.date, daily["symbol"], strict=True))
    per_symbol = {s: _share(sum((d, s) in have for d in wanted), len(wanted)) for s in symbols}
    overall = _share(sum(v["covered"] for v in per_symbol.values()), len(wanted) * len(symbols))
    below = [s for s, v in per_symbol.items() if v["coverage_below_80"]]
    percent = round(100 * overall["coverage"])
    line = f"Sentiment data coverage: {percent}% ({100 - percent}% missing)"
    if below:
        shown = ", ".join(f"{s} {per_symbol[s]['coverage']:.0%}" for s in below)
        line += f"; under 80% for {shown}"
    return {
        "definition": COVERAGE_DEFINITION,
        "threshold": REVIEW_COVERAGE,
        "sessions": len(wanted),
        "overall": overall,
        "symbols": per_symbol,
        "symbols_below_80": below,
        "summary": line,
    }


def _share(covered: int, total: int) -> dict[str, Any]:
    value = covered / total if total else 0.0
    return {
        "coverage": value,
        "covered": covered,
        "total": total,
        "coverage_below_80": value < REVIEW_COVERAGE,
    }
