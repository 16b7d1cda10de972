import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import CLASS_NAMES, LabelSpec, make_labels
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.universe import load_universe


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    universe = load_universe()
    symbol = next(s for s in universe.default_symbols if universe.get(s).kind == "equity")
    source = SyntheticSource(universe, TradingCalendar())
    return source.fetch(symbol, dt.date(2024, 1, 1), dt.date(2025, 6, 30))


def _closes(values: list[float]) -> pd.DataFrame:
    dates = pd.bdate_range("2024-03-01", periods=len(values))
    return pd.DataFrame({"date": dates.to_numpy(dtype="datetime64[ns]"), "close": values})


# One-session forward returns +0.25, -0.2, -0.25, 0, +1, unknown: all exact in binary.
EDGES = _closes([100.0, 125.0, 100.0, 75.0, 75.0, 150.0])


def _classes(labels: pd.DataFrame) -> list[int]:
    """The labels as plain ints, -1 standing for <NA>."""
    return labels["label"].fillna(-1).tolist()


def test_class_names() -> None:
    assert CLASS_NAMES == {0: "down", 1: "neutral", 2: "up"}


def test_output_columns_and_types(bars: pd.DataFrame) -> None:
    labels = make_labels(bars, LabelSpec())
    assert list(labels.columns) == [
        "date",
        "forward_return",
        "threshold",
        "label",
        "label_end",
        "last_return",
        "last_band",
    ]
    assert labels.index.equals(bars.index)
    assert labels["label"].dtype == "Int8"
    assert labels["label_end"].dtype == "datetime64[ns]"
    assert set(labels["label"].dropna().unique()) == {0, 1, 2}


def test_forward_returns_and_edges_are_exact() -> None:
    labels = make_labels(EDGES, LabelSpec(horizon=1, threshold=0.25))
    assert labels["forward_return"].iloc[0] == 0.25
    assert labels["forward_return"].iloc[2] == -0.25
    assert labels["forward_return"].iloc[1] == pytest.approx(-0.2)
    assert math.isnan(labels["forward_return"].iloc[5])
    # A move exactly at the threshold is neutral on both sides.
    assert _classes(labels) == [1, 1, 1, 1, 2, -1]

    just_inside = make_labels(EDGES, LabelSpec(horizon=1, threshold=0.25 - 1e-12))
    assert _classes(just_inside) == [2, 1, 0, 1, 2, -1]
    zero = make_labels(EDGES, LabelSpec(horizon=1, threshold=0.0))
    assert _classes(zero) == [2, 0, 0, 1, 2, -1]


def test_longer_horizon_on_a_hand_built_series() -> None:
    frame = _closes([100.0, 80.0, 101.0, 100.0, 98.0, 102.0])
    labels = make_labels(frame, LabelSpec(horizon=3, threshold=0.015))
    # 100->100 flat, 80->98 up, 101->102 +0.99% neutral, then three unknown.
    assert _classes(labels) == [1, 2, 1, -1, -1, -1]
    assert labels["label_end"].iloc[:3].tolist() == frame["date"].iloc[3:].tolist()
    assert labels["label_end"].iloc[3:].isna().all()
    assert (labels["threshold"] == 0.015).all()


@pytest.mark.parametrize("horizon", [1, 7, 20])
def test_last_rows_unknown_and_label_end_is_h_sessions_ahead(
    bars: pd.DataFrame, horizon: int
) -> None:
    labels = make_labels(bars, LabelSpec(horizon=horizon))
    n = len(bars)
    assert labels["label"].iloc[n - horizon :].isna().all()
    assert labels["forward_return"].iloc[n - horizon :].isna().all()
    assert labels["label_end"].iloc[n - horizon :].isna().all()
    assert labels["label"].iloc[: n - horizon].notna().all()
    np.testing.assert_array_equal(
        labels["label_end"].iloc[: n - horizon].to_numpy(), bars["date"].iloc[horizon:].to_numpy()
    )
    close = bars["close"].to_numpy()
    for t in (0, 50, n - horizon - 1):
        assert labels["forward_return"].iloc[t] == close[t + horizon] / close[t] - 1


def test_volatility_threshold_is_trailing_std_times_root_horizon(bars: pd.DataFrame) -> None:
    spec = LabelSpec(horizon=5, mode="volatility", vol_lookback=10, vol_multiplier=0.8)
    labels = make_labels(bars, spec)
    log_returns = np.diff(np.log(bars["close"].to_numpy()), prepend=np.nan)
    assert labels["threshold"].iloc[:10].isna().all()
    assert labels["label"].iloc[:10].isna().all()
    assert labels["threshold"].iloc[10:].notna().all()
    for t in (10, 100, len(bars) - 1):
        expected = 0.8 * np.std(log_returns[t - 9 : t + 1], ddof=1) * math.sqrt(5)
        assert labels["threshold"].iloc[t] == pytest.approx(expected, rel=1e-12)
    r, threshold = labels["forward_return"], labels["threshold"]
    known = labels["label"].notna()
    assert (labels["label"][known & (r > threshold)] == 2).all()
    assert (labels["label"][known & (r < -threshold)] == 0).all()
    assert (labels["label"][known & (r.abs() <= threshold)] == 1).all()


@pytest.mark.parametrize("t", [20, 150, 300])
def test_volatility_threshold_uses_only_the_past(bars: pd.DataFrame, t: int) -> None:
    spec = LabelSpec(mode="volatility")
    before = make_labels(bars, spec)
    changed = bars.copy()
    changed.loc[t + 1 :, "close"] *= np.random.default_rng(t).uniform(0.5, 2.0, len(bars) - t - 1)
    after = make_labels(changed, spec)
    pd.testing.assert_series_equal(
        after["threshold"].iloc[: t + 1], before["threshold"].iloc[: t + 1], rtol=0, atol=1e-12
    )
    assert not np.allclose(after["forward_return"].iloc[t], before["forward_return"].iloc[t])


def test_deterministic_and_leaves_input_alone(bars: pd.DataFrame) -> None:
    original = bars.copy()
    for spec in (LabelSpec(), LabelSpec(mode="volatility", horizon=3)):
        first = make_labels(bars, spec)
        pd.testing.assert_frame_equal(first, make_labels(bars.copy(), spec), check_exact=True)
    pd.testing.assert_frame_equal(bars, original)


def test_rejects_unsorted_or_incomplete_bars(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="increasing date"):
        make_labels(bars.iloc[::-1], LabelSpec())
    with pytest.raises(ValueError, match="close"):
        make_labels(bars.drop(columns="close"), LabelSpec())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 0}, "horizon"),
        ({"horizon": 2.5}, "horizon"),
        ({"horizon": True}, "horizon"),
        ({"mode": "quantile"}, "mode"),
        ({"threshold": -0.01}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"threshold": math.inf}, "threshold"),
        ({"threshold": "0.01"}, "threshold"),
        ({"vol_lookback": 1}, "vol_lookback"),
        ({"vol_lookback": 20.0}, "vol_lookback"),
        ({"vol_multiplier": -1.0}, "vol_multiplier"),
        ({"vol_multiplier": math.nan}, "vol_multiplier"),
    ],
)
def test_label_spec_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LabelSpec(**kwargs)  # type: ignore[arg-type]


def test_label_spec_defaults_and_immutability() -> None:
    spec = LabelSpec()
    assert (spec.horizon, spec.mode, spec.threshold) == (7, "fixed", 0.01)
    assert (spec.vol_lookback, spec.vol_multiplier) == (20, 0.5)
    with pytest.raises(AttributeError):
        spec.horizon = 3  # type: ignore[misc]


def _market(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.bdate_range("2024-03-01", periods=len(values)))


def test_market_reference_labels_the_excess_over_the_benchmark() -> None:
    # Stock forward returns +0.25, -0.2, -0.25, 0, +1; market +0.5, -0.5, 0, 0, +1.
    market = _market([100.0, 150.0, 75.0, 75.0, 75.0, 150.0])
    spec = LabelSpec(horizon=1, mode="fixed", threshold=0.1, reference="market")
    labels = make_labels(EDGES, spec, market)
    expected = [-0.25, 0.3, -0.25, 0.0, 0.0]
    assert labels["forward_return"].iloc[:5].tolist() == pytest.approx(expected, abs=1e-12)
    assert _classes(labels) == [0, 2, 0, 1, 1, -1]
    absolute = make_labels(EDGES, LabelSpec(horizon=1, mode="fixed", threshold=0.1))
    assert _classes(absolute) == [2, 0, 0, 1, 2, -1]


def test_a_stock_that_is_the_market_is_always_neutral(bars: pd.DataFrame) -> None:
    market = bars.set_index("date")["close"] * 2.0  # exact ratios: excess is exactly 0
    spec = LabelSpec(mode="volatility", reference="market")
    labels = make_labels(bars, spec, market)
    known = labels["label"].dropna()
    assert len(known) > 200 and set(known) == {1}


def test_market_labels_need_the_benchmark_and_its_sessions() -> None:
    spec = LabelSpec(horizon=1, mode="fixed", threshold=0.1, reference="market")
    with pytest.raises(ValueError, match="materialize nifty50_benchmark"):
        make_labels(EDGES, spec)
    gappy = _market([100.0, 150.0, 75.0, 75.0, 75.0, 150.0]).drop(pd.Timestamp("2024-03-05"))
    labels = make_labels(EDGES, spec, gappy)
    # 2024-03-05 is the 3rd session: its own label and the one before it read the missing close.
    assert _classes(labels) == [0, -1, -1, 1, 1, -1]
    with pytest.raises(ValueError, match="not positive"):
        make_labels(EDGES, spec, _market([100.0, 0.0, 1.0, 1.0, 1.0, 1.0]))


def test_market_volatility_band_is_causal(bars: pd.DataFrame) -> None:
    market = pd.Series(
        np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, len(bars)))),
        index=bars["date"],
    )
    spec = LabelSpec(mode="volatility", reference="market")
    base = make_labels(bars, spec, market)
    cut = 200
    shocked = market.copy()
    shocked.iloc[cut:] *= 1.5
    after = make_labels(bars, spec, shocked)
    pd.testing.assert_series_equal(base["threshold"].iloc[:cut], after["threshold"].iloc[:cut])
    assert not np.allclose(
        base["threshold"].iloc[cut:].dropna(), after["threshold"].iloc[cut:].dropna()
    )


def _series_labels(bars: pd.DataFrame, spec: LabelSpec, market: pd.Series | None) -> pd.DataFrame:
    """Labels written with pandas Series operations throughout: the plain statement of the
    formulas, which ``make_labels`` (numpy arithmetic) must match bit for bit."""
    close = bars["close"].astype("float64")
    forward = close.shift(-spec.horizon) / close - 1.0
    log_return = np.log(close).diff()
    if spec.reference == "market":
        assert market is not None
        closes = pd.Series(market, dtype="float64")
        closes.index = pd.to_datetime(closes.index)
        aligned = closes.reindex(pd.to_datetime(bars["date"])).to_numpy()
        market_close = pd.Series(aligned, index=bars.index)
        forward = forward - (market_close.shift(-spec.horizon) / market_close - 1.0)
        log_return = log_return - np.log(market_close).diff()
    if spec.mode == "fixed":
        threshold = pd.Series(spec.threshold, index=bars.index, dtype="float64")
    else:
        daily_vol = log_return.rolling(spec.vol_lookback).std()
        threshold = spec.vol_multiplier * daily_vol * math.sqrt(spec.horizon)
    known = forward.notna() & threshold.notna()
    classes = np.select([forward < -threshold, forward > threshold], [0, 2], 1)
    label = pd.Series(classes, index=bars.index).astype("Int8").where(known, pd.NA)
    return pd.DataFrame(
        {
            "date": bars["date"],
            "forward_return": forward,
            "threshold": threshold,
            "label": label,
            "label_end": bars["date"].shift(-spec.horizon),
            "last_return": log_return,
            "last_band": threshold / math.sqrt(spec.horizon),
        },
        index=bars.index,
    )


@pytest.mark.parametrize(
    "spec",
    [
        LabelSpec(),
        LabelSpec(horizon=3, mode="volatility"),
        LabelSpec(horizon=7, mode="volatility", reference="market"),
        LabelSpec(horizon=5, mode="fixed", reference="market", threshold=0.0),
        LabelSpec(horizon=1, mode="volatility", vol_lookback=2, vol_multiplier=0.0),
        LabelSpec(horizon=400, mode="volatility"),
    ],
    ids=str,
)
def test_labels_equal_the_series_formulation_bit_for_bit(
    bars: pd.DataFrame, spec: LabelSpec
) -> None:
    frame = bars.iloc[:300].set_axis(pd.RangeIndex(7, 307))
    frame.loc[[20, 150], "close"] = [np.nan, 0.0]
    frame.loc[100:140, "close"] = 50.0
    market = bars.set_index("date")["close"].rename("market") * 0.3 + 1.0
    market = market.drop(market.index[::17])
    for rows in (frame, frame.iloc[:5], frame.iloc[:0]):
        with np.errstate(all="ignore"):
            expected = _series_labels(rows, spec, market)
            actual = make_labels(rows, spec, market)
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)
        for column in ("forward_return", "threshold", "last_return", "last_band"):
            assert actual[column].to_numpy().tobytes() == expected[column].to_numpy().tobytes()
