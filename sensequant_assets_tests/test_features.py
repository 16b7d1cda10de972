import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import (
    FEATURE_COLUMNS,
    SENTIMENT_COLUMNS,
    WARMUP_SESSIONS,
    LabelSpec,
    compute_features,
    compute_features_panel,
    feature_columns,
    make_labels,
)
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.universe import Universe, load_universe

TWO_YEARS = (dt.date(2024, 1, 1), dt.date(2025, 12, 31))
THREE_YEARS = (dt.date(2023, 1, 1), dt.date(2025, 12, 31))
# the smallest planted IC at which the momentum test below separates signal from noise
STRONG_IC = 0.08
PRICES = ["open", "high", "low", "close"]

# Row at which each feature first has a value (rows before are NaN): a return over k sessions
# needs k + 1 closes, a window of n prices n rows, a window of n returns n + 1 rows, and the
# MACD signal is a 9-row EMA of a line that starts at row 25.
FIRST_DEFINED = {
    "log_return_1": 1,
    "log_return_5": 5,
    "log_return_10": 10,
    "log_return_20": 20,
    "rsi_14": 14,
    "macd": 25,
    "macd_signal": 33,
    "macd_hist": 33,
    "bollinger_pct_b_20": 19,
    "atr_14_rel": 14,
    "close_sma_10_gap": 9,
    "close_sma_50_gap": 49,
    "close_ema_10_gap": 9,
    "close_ema_50_gap": 49,
    "volume_z_20": 19,
    "realized_vol_20": 20,
}


@pytest.fixture(scope="module")
def universe() -> Universe:
    return load_universe()


@pytest.fixture(scope="module")
def equities(universe: Universe) -> list[str]:
    return [s for s in universe.default_symbols if universe.get(s).kind == "equity"]


@pytest.fixture(scope="module")
def bars(universe: Universe, equities: list[str]) -> pd.DataFrame:
    source = SyntheticSource(universe, TradingCalendar(), signal_ic=0.05)
    return source.fetch(equities[0], *TWO_YEARS)


def _bars_from_close(close: list[float] | np.ndarray, spread: float = 0.01) -> pd.DataFrame:
    close = np.asarray(close, dtype="float64")
    dates = pd.bdate_range("2024-01-01", periods=len(close))
    return pd.DataFrame(
        {
            "date": dates.to_numpy(dtype="datetime64[ns]"),
            "open": close,
            "high": close * (1 + spread),
            "low": close * (1 - spread),
            "close": close,
            "volume": np.full(len(close), 1000, dtype="int64"),
        }
    )


def _random_bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    frame = _bars_from_close(close)
    frame["open"] = close * np.exp(rng.normal(0, 0.01, n))
    frame["high"] = np.maximum(frame["open"], close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    frame["low"] = np.minimum(frame["open"], close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    frame["volume"] = rng.integers(1, 10_000, n)
    return frame


def _wilder(values: list[float], n: int) -> list[float]:
    """Textbook Wilder average over values[1:], NaN until n values have been seen."""
    out = [math.nan] * len(values)
    average = sum(values[1 : n + 1]) / n
    out[n] = average
    for t in range(n + 1, len(values)):
        average = (average * (n - 1) + values[t]) / n
        out[t] = average
    return out


def _ema(values: list[float], span: int) -> list[float]:
    alpha = 2 / (span + 1)
    out = [values[0]]
    for value in values[1:]:
        out.append(alpha * value + (1 - alpha) * out[-1])
    return out


def test_feature_columns_and_output_shape(bars: pd.DataFrame) -> None:
    features = compute_features(bars)
    assert list(features.columns) == ["date", *FEATURE_COLUMNS]
    assert features.index.equals(bars.index)
    assert features["date"].equals(bars["date"])
    assert not set(SENTIMENT_COLUMNS) & set(FEATURE_COLUMNS)
    assert set(FIRST_DEFINED) == set(FEATURE_COLUMNS)
    assert all(features[c].dtype == "float64" for c in FEATURE_COLUMNS)


@pytest.mark.parametrize("t", [3, 30, WARMUP_SESSIONS, 120, 400])
def test_features_up_to_t_ignore_every_later_row(bars: pd.DataFrame, t: int) -> None:
    rng = np.random.default_rng(t)
    sentiment = pd.Series(rng.uniform(-1, 1, len(bars)), index=bars["date"])
    expected = compute_features(bars, sentiment).iloc[: t + 1]

    perturbed = bars.copy()
    later = perturbed.index > t
    factor = rng.uniform(0.3, 3.0, int(later.sum()))
    for column in PRICES:
        perturbed.loc[later, column] *= factor
    perturbed.loc[later, "volume"] = rng.integers(0, 10**9, int(later.sum()))
    changed_sentiment = sentiment.copy()
    changed_sentiment.iloc[t + 1 :] = rng.uniform(-1, 1, len(bars) - t - 1)

    for candidate in (
        compute_features(perturbed, changed_sentiment).iloc[: t + 1],
        compute_features(bars.iloc[: t + 1], sentiment),
    ):
        pd.testing.assert_frame_equal(candidate, expected, rtol=0, atol=1e-12)


def test_warmup_is_exactly_where_features_are_nan(bars: pd.DataFrame) -> None:
    features = compute_features(bars)[list(FEATURE_COLUMNS)]
    assert WARMUP_SESSIONS == max(FIRST_DEFINED.values()) == 49
    assert features.iloc[:WARMUP_SESSIONS].isna().any(axis=1).all()
    assert features.iloc[WARMUP_SESSIONS:].notna().all().all()
    for column, first in FIRST_DEFINED.items():
        assert features[column].iloc[:first].isna().all(), column
        assert features[column].iloc[first:].notna().all(), column


def test_short_history_is_all_warmup(bars: pd.DataFrame) -> None:
    features = compute_features(bars.iloc[:10])
    assert features["rsi_14"].isna().all()
    assert features["log_return_5"].iloc[5:].notna().all()
    assert compute_features(bars.iloc[:0]).empty


def test_zero_volume_and_a_suspension_stay_finite(bars: pd.DataFrame) -> None:
    frame = bars.copy()
    frame.loc[[60, 61, 200], "volume"] = 0
    halted = slice(300, 330)
    last_close = frame.at[299, "close"]
    frame.loc[halted, PRICES] = last_close
    frame.loc[halted, "volume"] = 0
    features = compute_features(frame)
    values = features[list(FEATURE_COLUMNS)].iloc[WARMUP_SESSIONS:]
    assert np.isfinite(values.to_numpy()).all()

    flat = features.loc[319:330]  # the 20-session windows lying wholly inside the halt
    assert (flat["bollinger_pct_b_20"] == 0.5).all()
    assert (flat["volume_z_20"] == 0.0).all()
    assert (flat["realized_vol_20"] == 0.0).all()
    assert (features.loc[301:330, "log_return_1"] == 0.0).all()


def test_monotone_and_flat_series_give_extreme_and_neutral_rsi() -> None:
    rising = compute_features(_bars_from_close(np.linspace(100, 160, 40)))
    falling = compute_features(_bars_from_close(np.linspace(160, 100, 40)))
    flat = compute_features(_bars_from_close(np.full(40, 100.0)))
    assert (rising["rsi_14"].iloc[14:] == 100.0).all()
    assert (falling["rsi_14"].iloc[14:] == 0.0).all()
    assert (flat["rsi_14"].iloc[14:] == 50.0).all()
    assert (flat["bollinger_pct_b_20"].iloc[19:] == 0.5).all()
    assert (flat["macd"].iloc[25:] == 0.0).all()


def test_rsi_matches_textbook_wilder() -> None:
    frame = _random_bars(80, seed=1)
    close = frame["close"].tolist()
    changes = [b - a for a, b in itertools.pairwise(close)]
    gains = _wilder([math.nan] + [max(c, 0.0) for c in changes], 14)
    losses = _wilder([math.nan] + [max(-c, 0.0) for c in changes], 14)
    expected = [100 - 100 / (1 + g / loss) for g, loss in zip(gains, losses, strict=True)]
    features = compute_features(frame)
    np.testing.assert_allclose(features["rsi_14"].iloc[14:], expected[14:], rtol=1e-10)


def test_atr_matches_textbook_wilder() -> None:
    frame = _random_bars(80, seed=2)
    high, low, close = (frame[c].tolist() for c in ("high", "low", "close"))
    true_range = [math.nan] + [
        max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        for t in range(1, len(close))
    ]
    atr = _wilder(true_range, 14)
    expected = [a / c for a, c in zip(atr, close, strict=True)]
    features = compute_features(frame)
    np.testing.assert_allclose(features["atr_14_rel"].iloc[14:], expected[14:], rtol=1e-10)


def test_macd_matches_plain_ema_recursion() -> None:
    frame = _random_bars(120, seed=3)
    close = frame["close"].tolist()
    line = [f - s for f, s in zip(_ema(close, 12), _ema(close, 26), strict=True)]
    signal = [math.nan] * 25 + _ema(line[25:], 9)
    features = compute_features(frame).iloc[33:]
    c = np.asarray(close[33:])
    np.testing.assert_allclose(features["macd"], np.asarray(line[33:]) / c, rtol=1e-9)
    np.testing.assert_allclose(features["macd_signal"], np.asarray(signal[33:]) / c, rtol=1e-9)
    np.testing.assert_allclose(
        features["macd_hist"], (np.asarray(line[33:]) - signal[33:]) / c, rtol=1e-9
    )


def test_percent_b_middle_band_and_formula() -> None:
    # When the last close equals the mean of the 19 before it, it is also the 20-session
    # mean, i.e. it sits on the middle band.
    head = [98.0, 103.0] * 9 + [97.0]
    middle = compute_features(_bars_from_close([*head, sum(head) / 19]))
    assert middle["bollinger_pct_b_20"].iloc[-1] == pytest.approx(0.5, abs=1e-12)

    frame = _random_bars(60, seed=4)
    features = compute_features(frame)
    for t in (19, 35, 59):
        window = frame["close"].to_numpy()[t - 19 : t + 1]
        lower, upper = window.mean() - 2 * window.std(), window.mean() + 2 * window.std()
        expected = (window[-1] - lower) / (upper - lower)
        assert features.at[t, "bollinger_pct_b_20"] == pytest.approx(expected, rel=1e-10)


def test_window_features_match_direct_formulas() -> None:
    frame = _random_bars(90, seed=5)
    close = frame["close"].to_numpy()
    log_volume = np.log1p(frame["volume"].to_numpy().astype(float))
    returns = np.diff(np.log(close), prepend=np.nan)
    features = compute_features(frame)
    ema_50 = _ema(close.tolist(), 50)
    for t in (50, 70, 89):
        row = features.loc[t]
        assert row["log_return_10"] == pytest.approx(math.log(close[t] / close[t - 10]))
        assert row["close_sma_50_gap"] == pytest.approx(close[t] / close[t - 49 : t + 1].mean() - 1)
        assert row["close_ema_50_gap"] == pytest.approx(close[t] / ema_50[t] - 1, rel=1e-9)
        window = log_volume[t - 19 : t + 1]
        assert row["volume_z_20"] == pytest.approx((window[-1] - window.mean()) / window.std())
        realized = math.sqrt(np.mean(returns[t - 19 : t + 1] ** 2))
        assert row["realized_vol_20"] == pytest.approx(realized)


def test_features_are_scale_free(bars: pd.DataFrame) -> None:
    scaled = bars.copy()
    scaled[PRICES] *= 10.0
    pd.testing.assert_frame_equal(
        compute_features(scaled), compute_features(bars), rtol=1e-9, atol=1e-12
    )


def test_sentiment_columns_only_when_given(bars: pd.DataFrame) -> None:
    plain = compute_features(bars)
    assert not set(SENTIMENT_COLUMNS) & set(plain.columns)

    dates = bars["date"]
    sentiment = pd.Series(
        [0.6, -0.4, np.nan, 0.9],
        index=[dates[3], dates[10], dates[11], pd.Timestamp("2024-01-06")],  # a Saturday
    )
    features = compute_features(bars, sentiment)
    assert list(features.columns) == ["date", *feature_columns(with_sentiment=True)]
    pd.testing.assert_frame_equal(features[plain.columns], plain)
    assert features["sentiment_available"].dtype == "int8"
    assert features["sentiment_score"].dtype == "float64"
    assert features.loc[[3, 10], "sentiment_score"].tolist() == [0.6, -0.4]
    assert features.loc[[3, 10], "sentiment_available"].tolist() == [1, 1]
    others = features.drop(index=[3, 10])
    assert (others["sentiment_score"] == 0.0).all()
    assert (others["sentiment_available"] == 0).all()


def test_duplicate_sentiment_dates_are_rejected(bars: pd.DataFrame) -> None:
    day = bars["date"][5]
    with pytest.raises(ValueError, match="one value per date"):
        compute_features(bars, pd.Series([0.1, 0.2], index=[day, day]))


def test_rejects_unsorted_or_incomplete_bars(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="increasing date"):
        compute_features(bars.iloc[::-1])
    with pytest.raises(ValueError, match="increasing date"):
        compute_features(pd.concat([bars.iloc[:5], bars.iloc[4:6]]))
    with pytest.raises(ValueError, match="volume"):
        compute_features(bars.drop(columns="volume"))


def test_panel_matches_per_symbol_and_keeps_row_order(
    universe: Universe, equities: list[str]
) -> None:
    source = SyntheticSource(universe, TradingCalendar())
    symbols = equities[:3]
    frames = {s: source.fetch(s, *TWO_YEARS) for s in symbols}
    panel_bars = pd.concat(f.assign(symbol=s) for s, f in frames.items())
    shuffled = panel_bars.sample(frac=1.0, random_state=0).reset_index(drop=True)
    shuffled.index = shuffled.index + 1000

    panel = compute_features_panel(shuffled)
    assert list(panel.columns) == ["date", "symbol", *FEATURE_COLUMNS]
    assert panel.index.equals(shuffled.index)
    assert panel["symbol"].equals(shuffled["symbol"])
    assert panel["date"].equals(shuffled["date"])
    for symbol, frame in frames.items():
        got = panel[panel["symbol"] == symbol].sort_values("date").reset_index(drop=True)
        pd.testing.assert_frame_equal(
            got.drop(columns="symbol"), compute_features(frame), check_exact=True
        )


def test_panel_sentiment_is_per_symbol(universe: Universe, equities: list[str]) -> None:
    source = SyntheticSource(universe, TradingCalendar())
    a, b = equities[:2]
    frame_a, frame_b = source.fetch(a, *TWO_YEARS), source.fetch(b, *TWO_YEARS)
    panel_bars = pd.concat([frame_a.assign(symbol=a), frame_b.assign(symbol=b)])
    day = frame_a["date"][100]
    sentiment = pd.DataFrame({"date": [day], "symbol": [a], "sentiment_score": [0.7]})
    panel = compute_features_panel(panel_bars, sentiment)
    assert list(panel.columns) == ["date", "symbol", *feature_columns(with_sentiment=True)]
    hit = (panel["symbol"] == a) & (panel["date"] == day)
    assert panel.loc[hit, "sentiment_score"].tolist() == [0.7]
    assert panel.loc[~hit, "sentiment_available"].eq(0).all()
    assert panel["sentiment_available"].sum() == 1
    with pytest.raises(ValueError, match="symbol"):
        compute_features_panel(frame_a)
    duplicated = pd.concat([panel_bars, panel_bars.iloc[[0]]])
    with pytest.raises(ValueError, match=f"symbol {a}: .*increasing date"):
        compute_features_panel(duplicated)


def test_empty_panel_keeps_the_schema(bars: pd.DataFrame) -> None:
    empty = bars.iloc[:0].assign(symbol=pd.Series(dtype=object))
    panel = compute_features_panel(empty)
    assert panel.empty
    assert list(panel.columns) == ["date", "symbol", *FEATURE_COLUMNS]
    assert panel["date"].dtype == "datetime64[ns]"
    sentiment = pd.DataFrame({"date": [], "symbol": [], "sentiment_score": []})
    assert list(compute_features_panel(empty, sentiment).columns)[-2:] == list(SENTIMENT_COLUMNS)


def _pooled_momentum_vs_forward(source: SyntheticSource, symbols: list[str]) -> float:
    """Spearman correlation, pooled over symbols and dates, of the 20-session log return with
    the next 7 sessions' return in excess of the NIFTY 50."""
    spec = LabelSpec(horizon=7, reference="market")
    market = source.fetch("NIFTY50", *THREE_YEARS).set_index("date")["close"]
    pairs = []
    for symbol in symbols:
        frame = source.fetch(symbol, *THREE_YEARS)
        pairs.append(
            pd.DataFrame(
                {
                    "feature": compute_features(frame)["log_return_20"],
                    "forward": make_labels(frame, spec, market)["forward_return"],
                }
            )
        )
    pooled = pd.concat(pairs).dropna()
    return float(spearmanr(pooled["feature"], pooled["forward"])[0])


def test_momentum_feature_sees_the_planted_signal(universe: Universe, equities: list[str]) -> None:
    # The planted factor persists for weeks, so the 20-session return (a noisy estimate of it)
    # must rank-correlate with the next week's market-relative return: about 0.043 at seed 7
    # with STRONG_IC, -0.002 without a signal. Over 100 symbols x 3 years the null spread is
    # about 0.01, and IC 0.05 would give only 0.024.
    calendar = TradingCalendar()
    strong = _pooled_momentum_vs_forward(
        SyntheticSource(universe, calendar, seed=7, signal_ic=STRONG_IC), equities
    )
    null = _pooled_momentum_vs_forward(
        SyntheticSource(universe, calendar, seed=7, signal_ic=0.0), equities
    )
    assert strong > 0.03
    assert abs(null) < 0.015


def _series_features(bars: pd.DataFrame) -> pd.DataFrame:
    """The features written with pandas Series operations throughout: the plain statement of
    each formula, which ``compute_features`` (numpy arithmetic) must match bit for bit."""

    def wilder(values: pd.Series, n: int) -> pd.Series:
        seed = values.rolling(n).mean()
        defined = np.flatnonzero(seed.notna().to_numpy())
        if len(defined) == 0:
            return seed
        seeded = values.copy()
        seeded.iloc[: defined[0]] = np.nan
        seeded.iloc[defined[0]] = seed.iloc[defined[0]]
        return seeded.ewm(alpha=1.0 / n, adjust=False).mean()

    def zscore(values: pd.Series, n: int) -> pd.Series:
        mean, std = values.rolling(n).mean(), values.rolling(n).std(ddof=0)
        flat = (values.rolling(n).max() == values.rolling(n).min()) | (std == 0)
        return ((values - mean) / std.mask(flat)).mask(flat, 0.0)

    close, high, low = (bars[c].astype("float64") for c in ("close", "high", "low"))
    log_close = np.log(close)
    returns = log_close.diff()
    out = pd.DataFrame({"date": bars["date"]}, index=bars.index)
    for h in (1, 5, 10, 20):
        out[f"log_return_{h}"] = log_close - log_close.shift(h)
    change = close.diff()
    gain, loss = wilder(change.clip(lower=0.0), 14), wilder((-change).clip(lower=0.0), 14)
    total = gain + loss
    out["rsi_14"] = (100.0 * (gain / total.where(total > 0))).mask(total == 0, 50.0)
    macd = (
        close.ewm(span=12, adjust=False, min_periods=12).mean()
        - close.ewm(span=26, adjust=False, min_periods=26).mean()
    )
    signal = macd.ewm(span=9, adjust=False, min_periods=9).mean()
    out["macd"], out["macd_signal"], out["macd_hist"] = (
        macd / close,
        signal / close,
        (macd - signal) / close,
    )
    out["bollinger_pct_b_20"] = 0.5 + zscore(close, 20) / (2.0 * 2.0)
    previous = close.shift(1)
    true_range = np.maximum(high - low, np.maximum((high - previous).abs(), (low - previous).abs()))
    out["atr_14_rel"] = wilder(true_range, 14) / close
    for n in (10, 50):
        out[f"close_sma_{n}_gap"] = close / close.rolling(n).mean() - 1.0
    for n in (10, 50):
        ema = close.ewm(span=n, adjust=False, min_periods=n).mean()
        out[f"close_ema_{n}_gap"] = close / ema - 1.0
    log_volume = np.log1p(bars["volume"].astype("float64").clip(lower=0.0))
    out["volume_z_20"] = zscore(log_volume, 20)
    out["realized_vol_20"] = np.sqrt((returns**2).rolling(20).mean())
    return out


def _awkward_bars(bars: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Inputs that reach the degenerate branches: flat runs, gaps, bad prices, odd indexes."""
    base = bars.iloc[:220].reset_index(drop=True)
    flat = base.copy()
    flat.loc[40:90, PRICES] = 100.0
    flat.loc[60:120, "volume"] = 5000
    flat.loc[130:150, "volume"] = 0
    holes = base.copy()
    holes.loc[[3, 70], "close"] = np.nan
    holes.loc[100:103, "high"] = np.nan
    holes.loc[110, "volume"] = np.nan
    holes.loc[[0, 80], "close"] = [-5.0, -1.0]
    holes.loc[50, "close"] = 0.0
    holes.loc[90, "close"] = np.inf
    holes.loc[5:10, "volume"] = -3
    rounded = base.assign(close=base["close"].round(0), volume=base["volume"].astype("int64"))
    return {
        "synthetic": base,
        "flat": flat,
        "holes": holes,
        "rounded": rounded,
        "short": base.iloc[:30],
        "single": base.iloc[:1],
        "empty": base.iloc[:0],
        "offset index": base.set_axis(pd.RangeIndex(1000, 1000 + len(base)) * 3),
        "monotone": _bars_from_close(np.r_[np.linspace(50, 80, 75), np.linspace(80, 40, 75)]),
    }


AWKWARD_CASES = ("synthetic", "flat", "holes", "rounded", "short", "single", "empty")


@pytest.mark.parametrize("case", [*AWKWARD_CASES, "offset index", "monotone"])
def test_features_equal_the_series_formulation_bit_for_bit(bars: pd.DataFrame, case: str) -> None:
    frame = _awkward_bars(bars)[case]
    with np.errstate(all="ignore"):
        expected = _series_features(frame)
        actual = compute_features(frame)
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    for column in FEATURE_COLUMNS:
        assert actual[column].to_numpy().tobytes() == expected[column].to_numpy().tobytes(), column
