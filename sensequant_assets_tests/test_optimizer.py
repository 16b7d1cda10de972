import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation.backtest import backtest, next_session_returns
from sensequant_assets.evaluation.costs import CostModel
from sensequant_assets.evaluation.optimizer import (
    TRIAL_COLUMNS,
    ParameterGrid,
    compute_indicators,
    rule_positions,
    run_optimizer,
    trial_id,
)
from sensequant_assets.features.technical import _rsi

FREE = CostModel(0.0, 0.0)
DATES = pd.bdate_range("2022-01-03", periods=400)
SMALL = ParameterGrid(sma_length=(10, 100), rsi_entry=(40,), rsi_exit=(70,))


def make_bars(n_symbols: int = 6, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0004, 0.015, (len(DATES), n_symbols))
    closes = 100.0 * np.exp(np.cumsum(steps, axis=0))
    symbols = [f"S{i}" for i in range(n_symbols)]
    bars = pd.DataFrame(
        {
            "date": np.repeat(DATES, n_symbols),
            "symbol": np.tile(symbols, len(DATES)),
            "close": closes.ravel(),
        }
    )
    return bars.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # any row order


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def default_run(bars):
    return run_optimizer(bars, ParameterGrid(), CostModel(), start=DATES[120].date())


def test_default_grid_keeps_all_36_trials_on_one_date_index(default_run):
    result = default_run
    assert ParameterGrid().n_trials == 36
    assert result.n_trials == 36 and len(result.trials) == 36
    assert list(result.trials.columns) == list(TRIAL_COLUMNS)
    assert list(result.trial_returns.columns) == result.trials["trial_id"].tolist()
    assert result.trials["trial_id"].is_unique
    assert "sma20_rsi40-70" in result.trial_returns.columns
    assert trial_id(20, 40, 70) == "sma20_rsi40-70"
    # Trial order is sma, then entry, then exit.
    assert result.trials["trial_id"].iloc[:4].tolist() == [
        "sma10_rsi30-60",
        "sma10_rsi30-70",
        "sma10_rsi30-80",
        "sma10_rsi40-60",
    ]
    returns = result.trial_returns
    assert returns.notna().all().all()
    # Prediction dates from start to the second-to-last session (the last has no next close).
    assert list(returns.index) == list(DATES[120:-1])
    assert result.dropped_rows == 6
    assert (result.trials["n_trades"] > 0).all()


def test_best_trial_is_the_highest_sharpe(default_run):
    trials = default_run.trials
    assert default_run.best_trial == trials.loc[trials["sharpe"].idxmax(), "trial_id"]
    assert trials["sharpe"].nunique() > 1
    best = default_run.best_params
    assert trial_id(best["sma_length"], best["rsi_entry"], best["rsi_exit"]) == (
        default_run.best_trial
    )


def test_metrics_match_their_definitions_and_empyrical(bars):
    rf_annual = 0.065
    result = run_optimizer(bars, SMALL, CostModel(), DATES[120].date(), None, rf_annual)
    rf = (1.0 + rf_annual) ** (1.0 / 252) - 1.0
    for row in result.trials.itertuples():
        daily = result.trial_returns[row.trial_id]
        excess = daily - rf
        per_period = excess.mean() / excess.std(ddof=1)
        assert row.sharpe_per_period == pytest.approx(per_period)
        assert row.sharpe == pytest.approx(per_period * math.sqrt(252))
        assert row.sharpe == pytest.approx(empyrical.sharpe_ratio(daily, risk_free=rf))
        assert row.max_drawdown == pytest.approx(empyrical.max_drawdown(daily))
        assert row.total_return == pytest.approx(empyrical.cum_returns_final(daily))
        assert row.max_drawdown < 0


def test_costs_only_ever_reduce_returns(bars):
    free = run_optimizer(bars, SMALL, FREE, start=DATES[120].date())
    paid = run_optimizer(bars, SMALL, CostModel(), start=DATES[120].date())
    gap = free.trial_returns - paid.trial_returns
    assert (gap >= -1e-15).all().all()
    assert (gap > 0).any().all()
    pd.testing.assert_series_equal(free.trials["n_trades"], paid.trials["n_trades"])
    assert (paid.trials["total_return"] < free.trials["total_return"]).all()


def test_warm_up_uses_history_before_start(bars):
    start = DATES[150]
    indicators = compute_indicators(bars, (100,))
    at_start = indicators[indicators["date"] == start]
    assert at_start[["sma_100", "rsi_14"]].notna().all().all()

    full = run_optimizer(bars, SMALL, FREE, start=start.date())
    cut = run_optimizer(bars[bars["date"] >= start], SMALL, FREE, start=start.date())
    first_days = slice(DATES[150], DATES[247])  # 98 sessions: SMA-100 is undefined on cut data
    assert (cut.trial_returns.loc[first_days, "sma100_rsi40-70"] == 0.0).all()
    assert (full.trial_returns.loc[first_days, "sma100_rsi40-70"] != 0.0).any()


def test_no_lookahead_changing_bars_from_d_on_leaves_earlier_returns_alone(bars):
    d = DATES[250]
    later = bars["date"] >= d
    rng = np.random.default_rng(0)
    edited = bars.copy()
    edited.loc[later, "close"] *= np.exp(rng.normal(0.0, 0.05, int(later.sum())))

    before = run_optimizer(bars, ParameterGrid(), CostModel(), start=DATES[120].date())
    after = run_optimizer(edited, ParameterGrid(), CostModel(), start=DATES[120].date())
    untouched = slice(None, DATES[248])  # prediction dates < d − 1
    pd.testing.assert_frame_equal(
        before.trial_returns.loc[untouched], after.trial_returns.loc[untouched]
    )
    # The prediction made at d − 1 is unchanged, but its return runs to close_d: it may move.
    day_before = DATES[249]
    assert (before.trial_returns.loc[day_before] != after.trial_returns.loc[day_before]).any()
    for params in ParameterGrid().trials()[:6]:
        args = (params["sma_length"], params["rsi_entry"], params["rsi_exit"])
        old = compute_indicators(bars, (params["sma_length"],))
        new = compute_indicators(edited, (params["sma_length"],))
        keep = (old["date"] <= day_before).to_numpy()
        pd.testing.assert_series_equal(
            rule_positions(old, *args)[keep], rule_positions(new, *args)[keep]
        )


def reference_rule(close, sma, rsi, entry, exit_):
    """Row-by-row statement of the documented rule for one symbol."""
    state, out = 0, []
    for c, m, r in zip(close, sma, rsi, strict=True):
        if math.isnan(c) or math.isnan(m) or math.isnan(r):
            state = 0
        elif state == 0 and c > m and entry < r < exit_:
            state = 1
        elif state == 1 and (c < m or r > exit_):
            state = 0
        out.append(float(state))
    return out


def test_rule_matches_a_row_by_row_state_machine(bars):
    grid = ParameterGrid()
    indicators = compute_indicators(bars, grid.sma_length)
    for symbol in ("S0", "S3"):
        rows = indicators[indicators["symbol"] == symbol]
        assert rows["date"].is_monotonic_increasing
        close = rows["close"]
        pd.testing.assert_series_equal(rows["sma_20"], close.rolling(20).mean(), check_names=False)
        pd.testing.assert_series_equal(rows["rsi_14"], _rsi(close, 14), check_names=False)
        for params in grid.trials():
            args = (params["sma_length"], params["rsi_entry"], params["rsi_exit"])
            got = rule_positions(indicators, *args)[rows.index].tolist()
            sma = rows[f"sma_{params['sma_length']}"]
            assert got == reference_rule(close, sma, rows["rsi_14"], *args[1:]), params


def test_rule_boundaries_floor_and_symbol_reset():
    nan = math.nan
    rows = [  # (symbol, close, sma, rsi, expected state) with entry 40, exit 70
        ("A", 10.0, 9.0, 45.0, 1.0),  # enter
        ("A", 10.0, 9.0, 35.0, 1.0),  # below the entry floor: a held position stays
        ("A", 9.0, 9.0, 70.0, 1.0),  # close = SMA and RSI = exit: not an exit
        ("A", 9.0, 9.5, 50.0, 0.0),  # close < SMA: exit
        ("A", 10.0, 9.0, 35.0, 0.0),  # floor: no entry
        ("A", 10.0, 9.0, 75.0, 0.0),  # above exit: no entry
        ("A", 10.0, 9.0, 40.0, 0.0),  # RSI = entry: no entry (strict)
        ("A", 10.0, 9.0, 69.0, 1.0),  # enter
        ("A", 10.0, 9.0, 71.0, 0.0),  # RSI > exit: exit
        ("A", 10.0, nan, 50.0, 0.0),  # warm-up: flat
        ("A", 10.0, 9.0, 50.0, 1.0),  # enter
        ("B", 10.0, 9.0, 35.0, 0.0),  # a new symbol starts flat, whatever A held
    ]
    frame = pd.DataFrame(rows, columns=["symbol", "close", "sma_20", "rsi_14", "expected"])
    got = rule_positions(frame, 20, 40, 70)
    assert got.tolist() == frame["expected"].tolist()


def test_trial_returns_equal_backtest_of_the_rule_predictions(bars):
    start, end = DATES[120].date(), DATES[300].date()
    result = run_optimizer(bars, SMALL, CostModel(), start, end, 0.05)
    indicators = compute_indicators(bars, (10,))
    long = rule_positions(indicators, 10, 40, 70)
    inside = indicators["date"].between(pd.Timestamp(start), pd.Timestamp(end))
    predictions = indicators.loc[inside, ["date", "symbol"]].assign(
        predicted=np.where(long[inside] > 0, 2, 1)
    )
    direct = backtest(predictions, next_session_returns(bars), "long_flat", CostModel(), 0.05)
    pd.testing.assert_series_equal(
        result.trial_returns["sma10_rsi40-70"],
        direct.portfolio_returns,
        check_names=False,
    )
    assert list(result.trial_returns.index) == list(DATES[120:301])
    assert result.dropped_rows == 0


def test_a_rule_that_never_trades_ties_and_the_first_trial_wins():
    rising = pd.DataFrame(
        {
            "date": np.repeat(DATES[:200], 2),
            "symbol": ["A", "B"] * 200,
            "close": np.repeat(100.0 * 1.01 ** np.arange(200), 2),
        }
    )  # never falls: RSI is 100, above every exit, so no trial ever enters
    result = run_optimizer(rising, ParameterGrid(), CostModel(), start=DATES[120].date())
    assert (result.trials["n_trades"] == 0).all()
    assert result.trials["sharpe"].isna().all()
    assert (result.trial_returns == 0.0).all().all()
    assert result.best_trial == "sma10_rsi30-60"


def test_parameter_grid_validation():
    grid = ParameterGrid(sma_length=[5, 8], rsi_entry=(35,), rsi_exit=(65, 75))
    assert grid.sma_length == (5, 8) and grid.n_trials == 4
    with pytest.raises(ValueError, match="every rsi_entry must be below every rsi_exit"):
        ParameterGrid(rsi_entry=(30, 60), rsi_exit=(60, 70))
    with pytest.raises(ValueError, match="sma_length values must be integers ≥ 2"):
        ParameterGrid(sma_length=(1, 20))
    with pytest.raises(ValueError, match="sma_length values must be integers ≥ 2"):
        ParameterGrid(sma_length=(20.5,))
    with pytest.raises(ValueError, match="rsi_exit needs at least one value"):
        ParameterGrid(rsi_exit=())
    with pytest.raises(ValueError, match="repeated"):
        ParameterGrid(rsi_entry=(30, 30))
    with pytest.raises(ValueError, match=r"rsi_exit values must be numbers in \[0, 100\]"):
        ParameterGrid(rsi_exit=(120,))


def test_run_optimizer_errors(bars):
    with pytest.raises(ValueError, match="bars are empty"):
        run_optimizer(bars.iloc[:0], SMALL, FREE)
    with pytest.raises(ValueError, match=r"bars lack column\(s\) \['symbol'\]"):
        run_optimizer(bars.drop(columns="symbol"), SMALL, FREE)
    with pytest.raises(ValueError, match=r"no bar dates in \[2030-01-01, end\]; bars cover"):
        run_optimizer(bars, SMALL, FREE, start=pd.Timestamp("2030-01-01").date())
    with pytest.raises(ValueError, match="start 2023-01-02 is after end 2022-06-01"):
        run_optimizer(
            bars,
            SMALL,
            FREE,
            start=pd.Timestamp("2023-01-02").date(),
            end=pd.Timestamp("2022-06-01").date(),
        )
    with pytest.raises(ValueError, match=r"duplicate \(date, symbol\)"):
        run_optimizer(pd.concat([bars, bars.iloc[[0]]]), SMALL, FREE)
