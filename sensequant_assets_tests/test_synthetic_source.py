import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.settings import DEFECT_KINDS
from sensequant_assets.sources.base import OHLCV_COLUMNS, MarketDataSource
from sensequant_assets.sources.synthetic import (
    KAPPA,
    ORIGIN,
    VOL_WINDOW,
    SyntheticSource,
    planted_signal,
)
from sensequant_assets.universe import Universe, UnknownSymbolError, load_universe

THREE_YEARS = (dt.date(2023, 1, 1), dt.date(2025, 12, 31))


@pytest.fixture(scope="module")
def universe() -> Universe:
    return load_universe()


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar()


@pytest.fixture(scope="module")
def source(universe: Universe, calendar: TradingCalendar) -> SyntheticSource:
    return SyntheticSource(universe, calendar)


@pytest.fixture(scope="module")
def equities(universe: Universe) -> list[str]:
    return [s for s in universe.default_symbols if universe.get(s).kind == "equity"]


def _log_returns(frame: pd.DataFrame) -> pd.Series:
    return np.log(frame["close"]).diff().dropna()


def _max_drawdown(close: pd.Series) -> float:
    return float((close / close.cummax() - 1.0).min())


def _window(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    return frame[(frame["date"] >= start) & (frame["date"] <= end)]


def _broken(frame: pd.DataFrame) -> pd.Series:
    top = frame[["open", "close"]].max(axis=1)
    bottom = frame[["open", "close"]].min(axis=1)
    return (frame["high"] < top) | (frame["low"] > bottom)


def test_implements_the_source_protocol(source: SyntheticSource) -> None:
    assert isinstance(source, MarketDataSource)
    assert (source.name, source.remote) == ("synthetic", False)


def test_rows_are_the_calendar_sessions_with_the_declared_types(
    source: SyntheticSource, calendar: TradingCalendar
) -> None:
    start, end = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    frame = source.fetch("reliance", start, end)
    assert list(frame.columns) == list(OHLCV_COLUMNS)
    assert [d.date() for d in frame["date"]] == calendar.sessions(start, end)
    assert frame["date"].dtype == "datetime64[ns]"
    assert (frame["date"] == frame["date"].dt.normalize()).all()
    assert frame["date"].is_monotonic_increasing
    assert all(frame[c].dtype == "float64" for c in ("open", "high", "low", "close"))
    assert frame["volume"].dtype == "int64"


def test_edges_of_the_requested_range(source: SyntheticSource) -> None:
    assert source.fetch("TCS", dt.date(2024, 1, 27), dt.date(2024, 1, 28)).empty  # weekend
    assert source.fetch("TCS", dt.date(2024, 3, 5), dt.date(2024, 3, 1)).empty
    early = source.fetch("TCS", dt.date(2004, 6, 1), dt.date(2005, 1, 31))
    assert early["date"].min() == pd.Timestamp(ORIGIN)
    with pytest.raises(UnknownSymbolError):
        source.fetch("NOSUCHCO", *THREE_YEARS)


def test_rejects_bad_knobs(universe: Universe, calendar: TradingCalendar) -> None:
    with pytest.raises(ValueError, match="signal_strength"):
        SyntheticSource(universe, calendar, signal_strength=1.5)
    with pytest.raises(ValueError, match="negative_volumes"):
        SyntheticSource(universe, calendar, defects=["negative_volumes"])


@pytest.mark.parametrize(
    ("strength", "defects"), [(0.0, ()), (1.0, DEFECT_KINDS)], ids=["plain", "signal+defects"]
)
def test_values_do_not_depend_on_the_requested_range(
    universe: Universe, calendar: TradingCalendar, strength: float, defects: tuple[str, ...]
) -> None:
    short = SyntheticSource(universe, calendar, 7, strength, defects)
    long = SyntheticSource(universe, calendar, 7, strength, defects)
    longer = SyntheticSource(universe, calendar, 7, strength, defects)  # generates 2 more years
    for symbol in ("INFY", "NIFTY50", "GOLDBEES"):
        half = short.fetch(symbol, dt.date(2024, 1, 1), dt.date(2024, 6, 30))
        wide = long.fetch(symbol, dt.date(2023, 1, 1), dt.date(2024, 12, 31))
        widest = longer.fetch(symbol, dt.date(2015, 1, 1), dt.date(2026, 12, 31))
        for frame in (wide, widest):
            pd.testing.assert_frame_equal(
                half, _window(frame, "2024-01-01", "2024-06-30").reset_index(drop=True)
            )
        one_day = short.fetch(symbol, dt.date(2024, 3, 14), dt.date(2024, 3, 14))
        pd.testing.assert_frame_equal(
            one_day, _window(wide, "2024-03-14", "2024-03-14").reset_index(drop=True)
        )
    # a later end rebuilds the grid further out; what was already served must not move
    before = short.fetch("INFY", dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    short.fetch("INFY", dt.date(2027, 1, 1), dt.date(2027, 2, 1))
    pd.testing.assert_frame_equal(
        before, short.fetch("INFY", dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    )


def test_same_seed_agrees_and_another_seed_differs(
    universe: Universe, calendar: TradingCalendar
) -> None:
    first = SyntheticSource(universe, calendar, seed=11).fetch("HDFCBANK", *THREE_YEARS)
    again = SyntheticSource(universe, calendar, seed=11).fetch("HDFCBANK", *THREE_YEARS)
    other = SyntheticSource(universe, calendar, seed=12).fetch("HDFCBANK", *THREE_YEARS)
    pd.testing.assert_frame_equal(first, again)
    assert len(other) == len(first)
    assert not np.allclose(other["close"], first["close"])
    assert abs(np.corrcoef(_log_returns(first), _log_returns(other))[0, 1]) < 0.1


def test_clean_bars_are_valid_and_complete(
    source: SyntheticSource, universe: Universe, calendar: TradingCalendar
) -> None:
    sessions = len(calendar.sessions(*THREE_YEARS))
    for symbol in [*universe.default_symbols, "NIFTY50"]:
        frame = source.fetch(symbol, *THREE_YEARS)
        assert len(frame) == sessions, symbol
        assert not _broken(frame).any(), symbol
        assert (frame["high"] >= frame["low"]).all(), symbol
        assert (frame[["open", "high", "low", "close"]] > 0).all().all(), symbol
        assert (frame["volume"] > 0).all(), symbol
        assert frame.notna().all().all(), symbol


def test_volatility_levels_and_factor_structure(
    source: SyntheticSource, equities: list[str], universe: Universe
) -> None:
    frames = {s: source.fetch(s, *THREE_YEARS) for s in equities}
    vols = pd.Series({s: _log_returns(f).std() * math.sqrt(250) for s, f in frames.items()})
    assert 0.2 <= vols.median() <= 0.35
    assert vols.quantile(0.1) > 0.15 and vols.quantile(0.9) < 0.45
    levels = pd.Series({s: f["close"].iloc[0] for s, f in frames.items()})
    assert levels.min() > 10 and levels.max() < 20_000 and levels.max() / levels.min() > 20

    index = source.fetch("NIFTY50", *THREE_YEARS)
    assert 0.13 <= _log_returns(index).std() * math.sqrt(250) <= 0.22
    assert index["close"].min() >= 1_000 and index["close"].max() < 100_000

    returns = pd.DataFrame({s: _log_returns(f) for s, f in frames.items()})
    corr = returns.corr().to_numpy()
    sectors = np.array([universe.sector(s) for s in returns.columns])
    same = (sectors[:, None] == sectors[None, :]) & ~np.eye(len(sectors), dtype=bool)
    other = sectors[:, None] != sectors[None, :]
    assert corr[other].mean() > 0.1
    assert corr[same].mean() > corr[other].mean() + 0.1
    market = _log_returns(index)
    betas = returns.apply(lambda r: r.cov(market) / market.var())
    assert betas.min() > 0.4 and betas.max() < 1.6 and betas.max() - betas.min() > 0.4


def test_fat_tails_and_volatility_clustering(source: SyntheticSource) -> None:
    for symbol in ("NIFTY50", "SBIN"):
        returns = _log_returns(source.fetch(symbol, dt.date(2005, 1, 1), dt.date(2025, 12, 31)))
        assert returns.kurt() > 3, symbol  # excess kurtosis; a normal has 0
        absolute = returns.abs()
        assert absolute.autocorr(1) > 0.1 and absolute.autocorr(20) > 0.05, symbol


def test_volume_is_higher_on_large_moves(source: SyntheticSource) -> None:
    frame = source.fetch("ITC", *THREE_YEARS)
    moves = np.log(frame["close"]).diff().abs()
    assert spearmanr(moves[1:], frame["volume"][1:])[0] > 0.15


def test_open_gaps_from_the_previous_close(source: SyntheticSource) -> None:
    frame = source.fetch("LT", *THREE_YEARS)
    gap = np.log(frame["open"] / frame["close"].shift())
    assert (gap.dropna() != 0).all()
    assert np.corrcoef(gap[1:], _log_returns(frame))[0, 1] > 0.2


def test_crashes_on_the_real_stress_windows(source: SyntheticSource) -> None:
    index = source.fetch("NIFTY50", dt.date(2005, 1, 1), dt.date(2025, 12, 31))
    covid = _max_drawdown(_window(index, "2020-01-14", "2020-03-31")["close"])
    gfc = _max_drawdown(_window(index, "2008-01-01", "2009-03-31")["close"])
    assert -0.55 <= covid <= -0.25
    assert gfc < -0.35
    overlap = _window(index, "2022-01-03", "2022-10-12")["close"]
    assert -0.5 < _max_drawdown(overlap) < 0
    assert np.isfinite(index["close"]).all() and index["close"].between(1_000, 100_000).all()


def test_planted_signal_is_causal(source: SyntheticSource) -> None:
    close = source.fetch("AXISBANK", *THREE_YEARS)["close"]
    signal = planted_signal(close)
    assert signal.iloc[:VOL_WINDOW].isna().all() and signal.iloc[VOL_WINDOW:].notna().all()
    assert signal.abs().max() < 1
    cut = 400
    tampered = close.copy()
    tampered.iloc[cut + 1 :] *= 1.3
    changed = planted_signal(tampered)
    pd.testing.assert_series_equal(changed.iloc[: cut + 1], signal.iloc[: cut + 1])
    assert not np.allclose(changed.iloc[cut + 1 : cut + 11], signal.iloc[cut + 1 : cut + 11])


def test_planted_drift_is_exactly_the_documented_formula(
    universe: Universe, calendar: TradingCalendar
) -> None:
    strength = 0.6
    plain = SyntheticSource(universe, calendar, signal_strength=0.0)
    planted = SyntheticSource(universe, calendar, signal_strength=strength)
    close = planted.fetch("TITAN", *THREE_YEARS)["close"]
    extra = np.log(close).diff() - np.log(plain.fetch("TITAN", *THREE_YEARS)["close"]).diff()
    returns = np.log(close).diff()
    sigma = np.sqrt((returns**2).rolling(VOL_WINDOW).mean())
    expected = (strength * KAPPA * sigma * planted_signal(close)).shift()
    known = expected.notna()
    assert known.sum() > 700
    np.testing.assert_allclose(extra[known], expected[known], atol=1e-12)
    pd.testing.assert_frame_equal(
        plain.fetch("NIFTY50", *THREE_YEARS), planted.fetch("NIFTY50", *THREE_YEARS)
    )


def _signal_vs_forward(source: SyntheticSource, symbols: list[str], horizon: int) -> pd.DataFrame:
    """Pooled (date, planted signal, forward log return net of the same-date average)."""
    parts = []
    for symbol in symbols:
        frame = source.fetch(symbol, *THREE_YEARS)
        log_close = np.log(frame["close"])
        forward = log_close.shift(-horizon) - log_close
        parts.append(
            pd.DataFrame(
                {"date": frame["date"], "signal": planted_signal(frame["close"]), "fwd": forward}
            )
        )
    pooled = pd.concat(parts).dropna()
    pooled["fwd_net"] = pooled["fwd"] - pooled.groupby("date")["fwd"].transform("mean")
    return pooled


def test_zero_strength_leaves_nothing_to_predict(
    universe: Universe, calendar: TradingCalendar, equities: list[str]
) -> None:
    # One 20-symbol x 3-year draw is dominated by the shared market/sector moves and by
    # overlapping 7-day windows: its pooled rank correlation has a null spread of about 0.04.
    # Netting out the same-date average and pooling ten seeds brings it to about 0.005, so
    # the bound 0.02 can only fail if there really is something to predict.
    pooled = pd.concat(
        _signal_vs_forward(SyntheticSource(universe, calendar, seed=seed), equities[:20], 7)
        for seed in range(10)
    )
    assert abs(spearmanr(pooled["signal"], pooled["fwd_net"])[0]) < 0.02


def test_full_strength_signal_is_clearly_detectable(
    universe: Universe, calendar: TradingCalendar, equities: list[str]
) -> None:
    strong = SyntheticSource(universe, calendar, signal_strength=1.0)
    week = _signal_vs_forward(strong, equities[:20], 7)
    assert spearmanr(week["signal"], week["fwd"])[0] > 0.05
    assert spearmanr(week["signal"], week["fwd_net"])[0] > 0.05
    day = _signal_vs_forward(strong, equities[:20], 1)
    assert 0.08 < spearmanr(day["signal"], day["fwd"])[0] < 0.18
    half = SyntheticSource(universe, calendar, signal_strength=0.5)
    day_half = _signal_vs_forward(half, equities[:20], 1)
    assert 0.03 < spearmanr(day_half["signal"], day_half["fwd"])[0] < 0.1


ROW_DEFECT_CHECKS = {
    "negative_volume": lambda frame, sessions: bool((frame["volume"] < 0).any()),
    "broken_ohlc": lambda frame, sessions: bool(_broken(frame).any()),
    "missing_days": lambda frame, sessions: len(frame) < len(sessions),
}


@pytest.mark.parametrize("kind", sorted(ROW_DEFECT_CHECKS))
def test_row_defects_hit_every_60_session_request_only_when_enabled(
    universe: Universe, calendar: TradingCalendar, kind: str
) -> None:
    enabled = SyntheticSource(universe, calendar, defects=[kind])
    others = SyntheticSource(universe, calendar, defects=[k for k in DEFECT_KINDS if k != kind])
    check = ROW_DEFECT_CHECKS[kind]
    days = calendar.sessions(dt.date(2023, 1, 1), dt.date(2025, 12, 31))
    for symbol in ("RELIANCE", "NIFTY50", "SILVERBEES", "ZYDUSLIFE"):
        for first in range(0, len(days) - 60, 23):
            window = days[first : first + 60]
            assert check(enabled.fetch(symbol, window[0], window[-1]), window), (symbol, first)
            assert not check(others.fetch(symbol, window[0], window[-1]), window), (symbol, first)


def test_defective_rows_are_otherwise_the_clean_rows(
    source: SyntheticSource, universe: Universe, calendar: TradingCalendar
) -> None:
    row_kinds = [k for k in DEFECT_KINDS if k != "unadjusted_split"]
    dirty = SyntheticSource(universe, calendar, defects=row_kinds).fetch("MARUTI", *THREE_YEARS)
    clean = source.fetch("MARUTI", *THREE_YEARS).set_index("date").loc[dirty["date"]]
    clean = clean.reset_index()
    np.testing.assert_array_equal(dirty["volume"].abs(), clean["volume"])
    np.testing.assert_array_equal(dirty[["open", "close"]], clean[["open", "close"]])
    np.testing.assert_array_equal(
        np.sort(dirty[["high", "low"]], axis=1), np.sort(clean[["high", "low"]], axis=1)
    )
    assert (dirty["volume"] < 0).mean() < 0.1 and _broken(dirty).mean() < 0.1


def test_unadjusted_split_once_a_year(
    source: SyntheticSource, universe: Universe, calendar: TradingCalendar
) -> None:
    split = SyntheticSource(universe, calendar, defects=["unadjusted_split"])
    for symbol in ("BAJFINANCE", "GOLDBEES"):
        dirty = split.fetch(symbol, dt.date(2021, 1, 1), dt.date(2025, 12, 31))
        clean = source.fetch(symbol, dt.date(2021, 1, 1), dt.date(2025, 12, 31))
        factor = dirty["close"] / clean["close"]
        halvings = -np.log2(factor)
        np.testing.assert_allclose(halvings, np.round(halvings), atol=1e-9)
        for column in ("open", "high", "low"):
            np.testing.assert_allclose(dirty[column] / clean[column], factor, rtol=1e-12)
        np.testing.assert_allclose(
            dirty["volume"] / clean["volume"], 1 / factor, rtol=5 / clean["volume"].min()
        )
        steps = np.round(halvings.diff().fillna(0)).astype(int)
        assert set(steps) == {0, 1}
        ex_dates = dirty["date"][steps == 1]
        assert sorted(ex_dates.dt.year) == [2021, 2022, 2023, 2024, 2025]
        overnight = dirty["open"] / dirty["close"].shift()
        assert overnight[steps == 1].between(0.4, 0.6).all()
        assert overnight[steps == 0].iloc[1:].between(0.8, 1.25).all()
        assert ((dirty[["open", "high", "low", "close"]] > 0).all()).all()
    index = split.fetch("NIFTY50", *THREE_YEARS)
    pd.testing.assert_frame_equal(index, source.fetch("NIFTY50", *THREE_YEARS))
