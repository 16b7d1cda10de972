import math

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation.backtest import (
    available_modes,
    backtest,
    equity_curve,
    next_session_returns,
    positions_from_predictions,
)
from sensequant_assets.evaluation.costs import CostModel, periodic_risk_free
from sensequant_assets.evaluation.passive_books import (
    benchmark_next_returns,
    buy_and_hold,
    cash,
    sixty_forty,
)

FREE = CostModel(0.0, 0.0, short_cost_bp_annual=0.0)
SHORTS = CostModel(short_cost_bp_annual=50.0)
DAYS = pd.bdate_range("2024-01-01", periods=5)  # Mon 1 .. Fri 5 January 2024
# Hand-built closes and the next-session returns they imply (t → t+1; NaN on the last day).
CLOSES = {"AAA": [100.0, 110.0, 99.0, 99.0, 108.9], "BBB": [50.0, 50.0, 55.0, 44.0, 44.0]}
NEXT = {"AAA": [0.1, -0.1, 0.0, 0.1, math.nan], "BBB": [0.0, 0.1, -0.2, 0.0, math.nan]}


def hand_bars() -> pd.DataFrame:
    rows = [
        (day, symbol, close)
        for symbol, closes in CLOSES.items()
        for day, close in zip(DAYS, closes, strict=True)
    ]
    return pd.DataFrame(rows, columns=["date", "symbol", "close"])


def predict(classes: dict[str, list[int | None]]) -> pd.DataFrame:
    """Prediction rows from per-symbol class lists aligned with DAYS (None: no prediction)."""
    rows = [
        (day, symbol, c)
        for symbol, values in classes.items()
        for day, c in zip(DAYS, values, strict=False)
        if c is not None
    ]
    return pd.DataFrame(rows, columns=["date", "symbol", "predicted"])


@pytest.fixture()
def returns() -> pd.DataFrame:
    return next_session_returns(hand_bars())


def random_walk(n_symbols: int, n_days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_days)
    log_paths = np.cumsum(rng.normal(0.0, 0.015, (n_days, n_symbols)), axis=0)
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    return pd.DataFrame(
        {
            "date": np.repeat(dates, n_symbols),
            "symbol": np.tile(symbols, n_days),
            "close": (100.0 * np.exp(log_paths)).ravel(),
        }
    )


# --- next-session returns --------------------------------------------------------------------


def test_next_return_at_t_is_close_t_plus_1_over_close_t_within_each_symbol():
    shuffled = hand_bars().sample(frac=1.0, random_state=3)
    out = next_session_returns(shuffled)
    assert list(out.columns) == ["date", "symbol", "next_return"]
    for symbol, expected in NEXT.items():
        got = out[out["symbol"] == symbol].set_index("date")["next_return"]
        assert list(got.index) == list(DAYS)
        np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-12)


def test_next_session_returns_rejects_duplicates_naming_symbol_and_date():
    bars = pd.concat([hand_bars(), hand_bars().iloc[[7]]])
    with pytest.raises(ValueError, match=r"duplicate \(date, symbol\).*BBB on 2024-01-03"):
        next_session_returns(bars)


def test_next_session_returns_rejects_missing_columns_and_bad_closes():
    with pytest.raises(ValueError, match=r"lack column\(s\) \['close'\]"):
        next_session_returns(hand_bars().drop(columns="close"))
    bad = hand_bars()
    bad.loc[2, "close"] = 0.0
    with pytest.raises(ValueError, match=r"non-positive close.*AAA on 2024-01-03"):
        next_session_returns(bad)


def test_benchmark_next_returns_aligns_like_the_symbols():
    bars = pd.DataFrame({"date": DAYS, "close": CLOSES["AAA"]}).iloc[::-1]
    out = benchmark_next_returns(bars)
    assert list(out.index) == list(DAYS)
    np.testing.assert_allclose(out.to_numpy(), NEXT["AAA"], rtol=1e-12)
    with pytest.raises(ValueError, match="duplicate date 2024-01-02"):
        benchmark_next_returns(pd.concat([bars, bars.iloc[[3]]]))


# --- predictions → positions -----------------------------------------------------------------


def test_positions_per_mode():
    preds = predict({"AAA": [0, 1, 2]})
    flat = positions_from_predictions(preds, "long_flat")["position"].tolist()
    short = positions_from_predictions(preds, "long_short")["position"].tolist()
    assert flat == [0.0, 0.0, 1.0]
    assert short == [-1.0, 0.0, 1.0]


def test_unknown_class_is_rejected_naming_value_symbol_and_date():
    preds = predict({"AAA": [2, 1], "BBB": [1, 3]})
    with pytest.raises(ValueError, match=r"unknown predicted class 3 for BBB on 2024-01-02"):
        positions_from_predictions(preds, "long_flat")
    with pytest.raises(ValueError, match="unknown predicted class 'up'"):
        positions_from_predictions(predict({"AAA": ["up"]}), "long_short")


def test_duplicate_predictions_and_bad_mode_are_rejected():
    preds = pd.concat([predict({"AAA": [2, 1]}), predict({"AAA": [None, 2]})])
    with pytest.raises(ValueError, match=r"duplicate \(date, symbol\).*AAA on 2024-01-02"):
        positions_from_predictions(preds, "long_flat")
    with pytest.raises(ValueError, match="mode must be one of"):
        positions_from_predictions(predict({"AAA": [2]}), "short_only")


# --- alignment and lookahead -----------------------------------------------------------------


def test_prediction_at_t_earns_the_next_session_not_the_one_ending_at_t(returns):
    # Up on Tuesday only: AAA went 100 → 110 into Tuesday (+10%) and 110 → 99 after it (−10%).
    result = backtest(predict({"AAA": [1, 2, 1, 1]}), returns, "long_flat", FREE)
    assert result.portfolio_returns.loc["2024-01-02"] == pytest.approx(-0.1)
    np.testing.assert_allclose(result.portfolio_returns.to_numpy(), [0.0, -0.1, 0.0, 0.0])


def test_hand_example_two_symbols_long_short(returns):
    preds = predict({"AAA": [2, 0, 2, 1, 2], "BBB": [0, 2, 0, 2, 1]})
    result = backtest(preds, returns, "long_short", FREE)
    # Friday has no next close: both rows dropped, so four dates remain.
    assert list(result.portfolio_returns.index) == list(DAYS[:4])
    assert result.dropped_rows == 2
    expected_aaa = [0.1, 0.1, 0.0, 0.0]  # +1·0.1, −1·−0.1, +1·0.0, 0·0.1
    expected_bbb = [-0.0, 0.1, 0.2, 0.0]  # −1·0.0, +1·0.1, −1·−0.2, +1·0.0
    np.testing.assert_allclose(result.symbol_returns["AAA"], expected_aaa, atol=1e-12)
    np.testing.assert_allclose(result.symbol_returns["BBB"], expected_bbb, atol=1e-12)
    np.testing.assert_allclose(result.portfolio_returns, [0.05, 0.1, 0.1, 0.0], atol=1e-12)


def test_perfect_foresight_makes_money_but_the_past_return_does_not():
    bars = random_walk(20, 500, seed=11)
    returns = next_session_returns(bars)
    known = returns.dropna()
    future = known.assign(predicted=np.where(known["next_return"] > 0, 2, 0))
    past_return = bars.sort_values(["symbol", "date"]).groupby("symbol")["close"].pct_change()
    past = bars.assign(past=past_return).dropna()
    hindsight = past.assign(predicted=np.where(past["past"] > 0, 2, 0))

    perfect = backtest(future, returns, "long_short", FREE).portfolio_returns
    lagged = backtest(hindsight, returns, "long_short", FREE).portfolio_returns
    assert (perfect > 0).all()
    assert perfect.mean() > 0.005
    # On a random walk the return ending at t says nothing about the next one.
    t_stat = lagged.mean() / (lagged.std(ddof=1) / math.sqrt(len(lagged)))
    assert abs(t_stat) < 3.0
    assert abs(lagged.mean()) < perfect.mean() / 20


# --- costs -----------------------------------------------------------------------------------


def test_cost_model_rates_presets_and_validation():
    costs = CostModel()
    assert (costs.round_trip_bp, costs.slippage_bp) == (24.0, 5.0)
    assert costs.per_side_rate == pytest.approx((12.0 + 5.0) / 1e4)
    assert CostModel.delivery() == costs
    assert CostModel.intraday().per_side_rate == pytest.approx((4.0 + 5.0) / 1e4)
    assert CostModel.intraday(slippage_bp=0.0).round_trip_bp == 8.0
    assert costs.to_dict() == {
        "round_trip_bp": 24.0,
        "slippage_bp": 5.0,
        "per_side_rate": costs.per_side_rate,
        "short_cost_bp_annual": None,
    }
    assert not costs.shorts_allowed and costs.short_rate == 0.0
    assert SHORTS.short_rate == pytest.approx(50.0 / 1e4 / 252)
    with pytest.raises(ValueError, match="short_cost_bp_annual"):
        CostModel(short_cost_bp_annual=-1.0)
    for bad in (-1.0, math.nan, math.inf, "5", True):
        with pytest.raises(ValueError, match="slippage_bp must be a finite number ≥ 0"):
            CostModel(slippage_bp=bad)
    with pytest.raises(ValueError, match="round_trip_bp"):
        CostModel(round_trip_bp=-0.5)


def test_enter_hold_exit_pays_two_sides(returns):
    costs = CostModel(24.0, 5.0)
    rate = 0.0017
    result = backtest(predict({"AAA": [2, 2, 1, 1]}), returns, "long_flat", costs)
    np.testing.assert_allclose(result.turnover, [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(result.costs_paid, [rate, 0.0, rate, 0.0])
    np.testing.assert_allclose(result.gross_portfolio_returns, [0.1, -0.1, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(result.portfolio_returns, [0.1 - rate, -0.1, -rate, 0.0])
    # One round trip = the exchange/tax round trip plus slippage on both sides.
    assert result.costs_paid.sum() == pytest.approx((24.0 + 2 * 5.0) / 1e4)


def test_unchanged_positions_cost_nothing(returns):
    held = backtest(predict({"AAA": [2, 2, 2, 2]}), returns, "long_flat", CostModel())
    assert held.costs_paid.iloc[1:].eq(0.0).all()
    assert held.costs_paid.iloc[0] == pytest.approx(CostModel().per_side_rate)  # entry only
    idle = backtest(predict({"AAA": [1, 0, 1, 0]}), returns, "long_flat", CostModel())
    assert idle.costs_paid.eq(0.0).all()
    assert idle.portfolio_returns.eq(0.0).all()


def test_long_short_flip_costs_two_units(returns):
    result = backtest(predict({"AAA": [2, 0]}), returns, "long_short", SHORTS)
    rate = SHORTS.per_side_rate
    np.testing.assert_allclose(result.turnover, [1.0, 2.0])
    # the short day also pays one session of the borrow fee
    np.testing.assert_allclose(result.costs_paid, [rate, 2 * rate + SHORTS.short_rate])
    assert result.portfolio_returns.iloc[1] == pytest.approx(
        -1.0 * -0.1 - 2 * rate - SHORTS.short_rate
    )


def test_shorts_need_a_cost_model(returns):
    with pytest.raises(ValueError, match="long_short needs a cost model for shorts"):
        backtest(predict({"AAA": [2, 0]}), returns, "long_short", CostModel())
    assert available_modes(CostModel()) == ("long_flat",)
    assert available_modes(SHORTS) == ("long_flat", "long_short")


def test_active_return_is_the_book_minus_the_same_exposure_in_the_market(returns):
    # Day 1: AAA long (+0.1), BBB flat; the market of the two is (0.1 + 0.0)/2 = 0.05.
    # Day 2: both long: the book IS the market, so nothing is active.
    preds = predict({"AAA": [2, 2, 1, 1], "BBB": [1, 2, 1, 0]})
    result = backtest(preds, returns, "long_short", FREE, risk_free_annual=0.07)
    expected = [
        0.5 * (0.1 - 0.05),
        0.5 * (-0.1 - 0.0) + 0.5 * (0.1 - 0.0),
        0.0,
        -0.5 * (0.0 - 0.05),  # BBB short while the market of the two rose
    ]
    np.testing.assert_allclose(result.active_returns, expected, atol=1e-15)


def test_random_picks_have_no_active_edge_before_costs_whatever_the_market_does():
    bars = random_walk(40, 400, seed=3)
    bars["close"] *= np.exp(0.002 * bars.groupby("symbol").cumcount())  # a strong bull market
    returns = next_session_returns(bars)
    rng = np.random.default_rng(1)
    preds = bars[["date", "symbol"]].assign(predicted=rng.integers(0, 3, len(bars)))
    result = backtest(preds, returns, "long_flat", CostModel(0.0, 0.0), 0.065)
    active = result.active_returns
    assert abs(active.mean() / (active.std(ddof=1) / math.sqrt(len(active)))) < 3.0
    assert result.portfolio_returns.mean() > 5 * abs(active.mean())  # the book rode the market


def test_execution_lag_delays_every_call_by_one_session(returns):
    preds = predict({"AAA": [2, 0, 2, 2]})
    on_time = backtest(preds, returns, "long_flat", FREE)
    late = backtest(preds, returns, "long_flat", FREE, lag_sessions=1)
    assert late.lag_sessions == 1
    np.testing.assert_allclose(on_time.positions["AAA"], [1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(late.positions["AAA"], [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(late.portfolio_returns, [0.0, -0.1, 0.0, 0.1], atol=1e-12)
    with pytest.raises(ValueError, match="lag_sessions"):
        backtest(preds, returns, "long_flat", FREE, lag_sessions=-1)


def test_foresight_is_lost_when_trading_a_session_late():
    bars = random_walk(20, 300, seed=4)
    returns = next_session_returns(bars)
    known = returns.dropna()
    future = known.assign(predicted=np.where(known["next_return"] > 0, 2, 0))
    late = backtest(future, returns, "long_flat", FREE, lag_sessions=1).active_returns
    on_time = backtest(future, returns, "long_flat", FREE).active_returns
    assert on_time.mean() > 0.003
    assert abs(late.mean()) < on_time.mean() / 20


def test_a_missing_prediction_means_flat_and_pays_the_exit(returns):
    rate = CostModel().per_side_rate
    result = backtest(predict({"AAA": [2, None, 2]}), returns, "long_flat", CostModel())
    assert list(result.portfolio_returns.index) == [DAYS[0], DAYS[2]]  # no row for Tuesday
    # Consecutive timeline dates are treated as consecutive sessions (documented).
    np.testing.assert_allclose(result.turnover, [1.0, 0.0])
    both = predict({"AAA": [2, None, 2], "BBB": [1, 1, 1]})
    result = backtest(both, returns, "long_flat", CostModel())
    np.testing.assert_allclose(result.positions["AAA"], [1.0, np.nan, 1.0])
    np.testing.assert_allclose(result.n_symbols, [2, 1, 2])
    # Mon: AAA 1/2; Tue: AAA flat, BBB neutral (weight 0); Wed: AAA back to 1/2.
    np.testing.assert_allclose(result.turnover, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(result.costs_paid, [0.5 * rate, 0.5 * rate, 0.5 * rate])


# --- portfolio, risk-free, baselines ---------------------------------------------------------


def test_equal_weight_over_predicted_symbols_and_flat_capital_earns_risk_free(returns):
    rf_annual = 0.0655
    rf = (1.0 + rf_annual) ** (1.0 / 252) - 1.0
    assert periodic_risk_free(rf_annual) == pytest.approx(rf)
    preds = predict({"AAA": [2, 2, 2, 2], "BBB": [1, 2, None, 0]})
    result = backtest(preds, returns, "long_short", FREE, risk_free_annual=rf_annual)
    expected = [
        0.5 * 0.1 + 0.5 * rf,  # AAA long, BBB flat earns rf
        0.5 * -0.1 + 0.5 * 0.1,  # both long: no cash
        0.0,  # only AAA predicted: it gets all the capital, r = 0.0
        0.5 * 0.1 + 0.5 * (-1.0 * 0.0 + rf),  # BBB short earns −r, its collateral rf
    ]
    np.testing.assert_allclose(result.portfolio_returns, expected, atol=1e-15)
    np.testing.assert_allclose(result.n_symbols, [2, 2, 1, 2])
    np.testing.assert_allclose(result.symbol_returns.loc[DAYS[0], "BBB"], rf)
    assert np.isnan(result.symbol_returns.loc[DAYS[2], "BBB"])
    assert result.risk_free_annual == rf_annual and result.mode == "long_short"
    all_flat = backtest(predict({"AAA": [1, 1]}), returns, "long_flat", FREE, 0.05)
    np.testing.assert_allclose(
        all_flat.portfolio_returns, cash(all_flat.portfolio_returns.index, 0.05)
    )


def test_portfolio_is_row_mean_of_symbol_returns_when_all_symbols_are_predicted():
    bars = random_walk(8, 120, seed=5)
    returns = next_session_returns(bars)
    rng = np.random.default_rng(0)
    preds = bars[["date", "symbol"]].assign(predicted=rng.integers(0, 3, len(bars)))
    result = backtest(preds, returns, "long_short", SHORTS, risk_free_annual=0.07)
    np.testing.assert_allclose(result.portfolio_returns, result.symbol_returns.mean(axis=1))
    np.testing.assert_allclose(
        result.portfolio_returns, result.gross_portfolio_returns - result.costs_paid
    )
    assert result.dropped_rows == 8  # each symbol's last bar


def reference_backtest(predictions, bars, mode, costs, risk_free_annual):
    """Loop-per-day restatement of the documented accounting, for cross-checking."""
    position_of = {"long_flat": {0: 0, 1: 0, 2: 1}, "long_short": {0: -1, 1: 0, 2: 1}}[mode]
    rf = (1.0 + risk_free_annual) ** (1.0 / 252) - 1.0
    next_return = {}
    for symbol, rows in bars.sort_values("date").groupby("symbol"):
        closes, dates = rows["close"].tolist(), rows["date"].tolist()
        for i in range(len(rows) - 1):
            next_return[(dates[i], symbol)] = closes[i + 1] / closes[i] - 1.0
    by_date: dict = {}
    for row in predictions.itertuples():
        if (row.date, row.symbol) in next_return:
            by_date.setdefault(row.date, {})[row.symbol] = position_of[row.predicted]
    out, previous = {}, {}
    for day in sorted(by_date):
        weights = {s: p / len(by_date[day]) for s, p in by_date[day].items()}
        gross = sum(w * next_return[(day, s)] for s, w in weights.items())
        gross += (1.0 - sum(max(w, 0.0) for w in weights.values())) * rf
        traded = sum(
            abs(weights.get(s, 0.0) - previous.get(s, 0.0)) for s in set(weights) | set(previous)
        )
        borrowed = sum(max(-w, 0.0) for w in weights.values())
        out[day] = gross - traded * costs.per_side_rate - borrowed * costs.short_rate
        previous = weights
    return pd.Series(out)


@pytest.mark.parametrize("mode", ["long_flat", "long_short"])
def test_vectorised_backtest_matches_a_per_day_loop_with_gaps(mode):
    rng = np.random.default_rng(42)
    bars = random_walk(6, 60, seed=9)
    bars = bars.drop(index=rng.choice(bars.index, 25, replace=False))  # missing bars
    preds = bars[["date", "symbol"]].assign(predicted=rng.integers(0, 3, len(bars)))
    preds = preds.drop(index=rng.choice(preds.index, 40, replace=False))  # missing predictions
    preds = preds.sample(frac=1.0, random_state=1)  # order must not matter
    result = backtest(preds, next_session_returns(bars), mode, SHORTS, 0.06)
    expected = reference_backtest(preds, bars, mode, SHORTS, 0.06)
    assert list(result.portfolio_returns.index) == list(expected.index)
    np.testing.assert_allclose(result.portfolio_returns.to_numpy(), expected.to_numpy())


def test_rows_without_a_known_next_return_are_dropped_and_counted(returns):
    preds = predict({"AAA": [2, 2, 2, 2, 2]})
    preds.loc[len(preds)] = [DAYS[1], "ZZZ", 2]  # a symbol the returns do not know
    result = backtest(preds, returns, "long_flat", FREE)
    assert result.dropped_rows == 2
    assert list(result.positions.columns) == ["AAA"]
    with pytest.raises(ValueError, match="none of the 1 prediction row"):
        backtest(predict({"AAA": [None] * 4 + [2]}), returns, "long_flat", FREE)


def test_backtest_validates_inputs(returns):
    preds = predict({"AAA": [2]})
    with pytest.raises(ValueError, match=r"returns lack column\(s\) \['next_return'\]"):
        backtest(preds, returns.drop(columns="next_return"), "long_flat", FREE)
    with pytest.raises(ValueError, match=r"duplicate.*AAA on 2024-01-01"):
        backtest(preds, pd.concat([returns, returns.iloc[[0]]]), "long_flat", FREE)
    with pytest.raises(ValueError, match="risk_free_annual"):
        backtest(preds, returns, "long_flat", FREE, risk_free_annual=-2.0)
    with pytest.raises(ValueError, match="costs must be a CostModel"):
        backtest(preds, returns, "long_flat", 0.0017)


def test_buy_and_hold_cash_and_sixty_forty_on_hand_examples(returns):
    dates = DAYS[:4]
    np.testing.assert_allclose(buy_and_hold(returns, dates), [0.05, 0.0, -0.1, 0.05], atol=1e-12)
    # A date where only one symbol is known averages over that symbol alone.
    partial = returns[~((returns["symbol"] == "BBB") & (returns["date"] == DAYS[0]))]
    assert buy_and_hold(partial, dates).iloc[0] == pytest.approx(0.1)

    rf = 1.08 ** (1 / 252) - 1
    pd.testing.assert_series_equal(
        cash(dates, 0.08), pd.Series(rf, index=dates.rename("date"), name="cash")
    )
    assert cash([DAYS[0]]).iloc[0] == 0.0

    benchmark = pd.Series([0.01, -0.02, 0.03, 0.0], index=dates)
    mixed = sixty_forty(benchmark, dates, 0.08)
    np.testing.assert_allclose(mixed, 0.6 * benchmark.to_numpy() + 0.4 * rf)
    assert np.isnan(sixty_forty(benchmark, DAYS, 0.08).iloc[-1])  # benchmark unknown on Friday


def test_equity_curve_compounds_from_one():
    daily = pd.Series([0.1, -0.5, 0.2], index=DAYS[:3])
    curve = equity_curve(daily)
    np.testing.assert_allclose(curve, [1.0, 1.1, 0.55, 0.66])
    assert list(curve.index) == [*DAYS[:3], DAYS[3]]
    friday = equity_curve(pd.Series([0.01], index=DAYS[4:5]))
    assert friday.index[-1] == pd.Timestamp("2024-01-08")  # next business day (a Monday)
    assert list(equity_curve(pd.Series([0.1, 0.1])).index) == [0, 1, 2]
    with pytest.raises(ValueError, match="NaN"):
        equity_curve(pd.Series([0.1, math.nan]))


def test_nifty_100_sized_panel_runs():
    bars = random_walk(102, 750, seed=1)
    rng = np.random.default_rng(2)
    preds = bars[["date", "symbol"]].assign(predicted=rng.integers(0, 3, len(bars)))
    result = backtest(preds, next_session_returns(bars), "long_short", SHORTS)
    assert result.symbol_returns.shape == (749, 102)
    assert result.portfolio_returns.notna().all()


def test_holding_sessions_spread_each_call_over_overlapping_cohorts() -> None:
    dates = pd.bdate_range("2024-01-01", periods=6)
    bars = pd.DataFrame({"date": dates, "symbol": "AAA", "close": [100.0, 101, 102, 103, 104, 105]})
    returns = next_session_returns(bars)
    calls = pd.DataFrame({"date": dates[:5], "symbol": "AAA", "predicted": [2, 1, 1, 2, 2]})
    result = backtest(calls, returns, "long_flat", CostModel(0.0, 0.0), holding_sessions=2)
    assert result.positions["AAA"].tolist() == [0.5, 0.5, 0.0, 0.5, 1.0]
    # the cohorts overlap, so the flip-flopping calls trade less than one-session holding
    daily = backtest(calls, returns, "long_flat", CostModel(0.0, 0.0))
    assert result.turnover.sum() == pytest.approx(2.0)
    assert daily.turnover.sum() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="holding_sessions must be ≥ 1"):
        backtest(calls, returns, "long_flat", CostModel(), holding_sessions=0)
