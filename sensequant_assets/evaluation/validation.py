"""Out-of-sample evidence for one candidate: classification, backtests, baselines, optimizer.

Everything is computed from the walk-forward predictions (``walk_forward.OOS_COLUMNS``) and the
stored bars of this run; nothing is approximated or filled in. Accuracy, precision, recall and
F1 come from scikit-learn on the predictions; the backtests follow ``backtest``'s timing and
cost conventions; the rule optimizer searches the same out-of-sample dates, and every one of
its trials is kept because the trial count deflates the Sharpe ratio in ``stat_tests``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from sensequant_assets.artifacts import CandidateLayout
from sensequant_assets.classification import classification_report
from sensequant_assets.evaluation.backtest import (
    BacktestResult,
    available_modes,
    backtest,
    next_session_returns,
)
from sensequant_assets.evaluation.books import book_calls
from sensequant_assets.evaluation.costs import CostModel
from sensequant_assets.evaluation.optimizer import (
    OptimizationResult,
    ParameterGrid,
    run_optimizer,
)
from sensequant_assets.evaluation.passive_books import (
    benchmark_next_returns,
    buy_and_hold,
    cash,
    sixty_forty,
)
from sensequant_assets.evaluation.performance import performance_summary
from sensequant_assets.evaluation.walk_forward import Fold, candidate_walk_forward
from sensequant_assets.features import LabelSpec, feature_columns
from sensequant_assets.training.distillation import InputMemo, content_digest, distillation_inputs
from sensequant_assets.training.reward_history import LIVE, read_reward_history
from sensequant_assets.training.rewards import RewardConfig
from sensequant_assets.training.student import StudentConfig

BASELINE_PREDICTIONS = {"majority_class": "majority_predicted", "yesterday_direction":
                        "yesterday_predicted"}  # fmt: skip


@dataclass(frozen=True)
class EvaluationConfig:
    """How the evidence is computed; ``strategy`` is the backtest the promotion gate judges.

    ``holding_sessions`` (default: the 7-session label horizon) is how long each call is held
    in the backtest, see ``backtest``. ``long_short`` needs a short cost model in ``costs``:
    without one, shorts are not a book anyone can trade, so they are not evaluated at all.
    ``sectors`` (symbol → sector, the universe's) makes the rank ICs sector-neutral
    (``skill``); without it they are plain cross-sectional rank ICs.
    """

    costs: CostModel = field(default_factory=CostModel)
    risk_free_annual: float = 0.065
    strategy: Literal["long_flat", "long_short"] = "long_flat"
    holding_sessions: int = 7
    grid: ParameterGrid = field(default_factory=ParameterGrid)
    n_boot: int = 2000
    pbo_blocks: int = 16
    seed: int = 0
    sectors: Mapping[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.strategy not in available_modes(self.costs):
            raise ValueError(
                f"strategy {self.strategy!r} needs a cost model for shorts (stock futures or a "
                "borrow fee): set SENSEQUANT_SHORT_COST_BP_ANNUAL, or use long_flat"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "costs": self.costs.to_dict(),
            "risk_free_annual": self.risk_free_annual,
            "strategy": self.strategy,
            "holding_sessions": self.holding_sessions,
            "optimizer_grid": {
                "sma_length": list(self.grid.sma_length),
                "rsi_entry": list(self.grid.rsi_entry),
                "rsi_exit": list(self.grid.rsi_exit),
            },
            "n_boot": self.n_boot,
            "pbo_blocks": self.pbo_blocks,
            "seed": self.seed,
            "rank_ic_sectors": len(set(self.sectors.values())) if self.sectors else None,
        }


@dataclass(frozen=True, eq=False)
class Validation:
    """The computed evidence; ``summary`` is what ``validation_summary.json`` holds.

    ``backtests`` has one book per mode the costs allow, trading the score's ranking
    (``books.book_calls``); ``lagged`` is the gated book with every call executed one session
    late (the execution-lag sensitivity).
    """

    oos: pd.DataFrame
    config: EvaluationConfig
    backtests: dict[str, BacktestResult]
    lagged: BacktestResult
    baselines: dict[str, pd.Series]
    benchmark: pd.Series
    optimizer: OptimizationResult
    summary: dict[str, Any]

    @property
    def strategy_returns(self) -> pd.Series:
        return self.backtests[self.config.strategy].portfolio_returns


def daily_correct(oos: pd.DataFrame, column: str) -> pd.Series:
    """Per date, the share of symbols whose ``column`` prediction equals the label.

    Symbols on one date share the market's move, so their hits are not independent; tests
    run on this daily series, one value per session.
    """
    hit = (oos[column].to_numpy() == oos["label"].to_numpy()).astype(float)
    return pd.Series(hit, index=pd.to_datetime(oos["date"])).groupby(level=0).mean()


def validate(
    oos: pd.DataFrame,
    bars: pd.DataFrame,
    benchmark_bars: pd.DataFrame,
    config: EvaluationConfig,
) -> Validation:
    """Compute the validation evidence for out-of-sample predictions ``oos``.

    ``bars`` are the stored OHLCV rows (``date, symbol, close`` at least) of every symbol in
    ``oos``, including the history before it (the rule optimizer's indicators warm up on it);
    ``benchmark_bars`` the NIFTY 50's ``date, close``.

    Later stages replay this from the stored predictions; in the process that computed it,
    the replay gets the same result back (:data:`VALIDATION_MEMO`) when the predictions, bars,
    benchmark and config are byte-identical. Treat the result as read-only.
    """
    key = content_digest(oos, bars, benchmark_bars, config)
    return VALIDATION_MEMO.get(key, lambda: _validate(oos, bars, benchmark_bars, config))


VALIDATION_MEMO: InputMemo[Validation] = InputMemo()


def _validate(
    oos: pd.DataFrame,
    bars: pd.DataFrame,
    benchmark_bars: pd.DataFrame,
    config: EvaluationConfig,
) -> Validation:
    if oos.empty:
        raise ValueError("no out-of-sample predictions to validate")
    missing = sorted(set(oos["symbol"]) - set(bars["symbol"]))
    if missing:
        raise ValueError(f"no stored bars for out-of-sample symbol(s) {missing}")
    if benchmark_bars.empty:
        raise ValueError("no NIFTY 50 benchmark bars: materialize nifty50_benchmark")
    returns = next_session_returns(bars[["date", "symbol", "close"]])
    predictions = oos[["date", "symbol"]].assign(predicted=book_calls(oos))
    backtests = {
        mode: backtest(
            predictions,
            returns,
            mode,
            config.costs,
            config.risk_free_annual,
            config.holding_sessions,
        )
        for mode in available_modes(config.costs)
    }
    lagged = backtest(
        predictions,
        returns,
        config.strategy,
        config.costs,
        config.risk_free_annual,
        config.holding_sessions,
        lag_sessions=1,
    )
    dates = backtests["long_flat"].portfolio_returns.index
    benchmark = benchmark_next_returns(benchmark_bars[["date", "close"]]).reindex(dates)
    if benchmark.isna().any():
        gaps = [d.date().isoformat() for d in benchmark[benchmark.isna()].index[:5]]
        raise ValueError(f"the NIFTY 50 benchmark has no next-session return on {gaps}")
    baselines = {
        "buy_and_hold": buy_and_hold(returns, dates),
        "sixty_forty": sixty_forty(benchmark, dates, config.risk_free_annual),
        "cash": cash(dates, config.risk_free_annual),
    }
    first, last = pd.Timestamp(dates.min()).date(), pd.Timestamp(dates.max()).date()
    optimizer = run_optimizer(
        bars[["date", "symbol", "close"]],
        config.grid,
        config.costs,
        start=first,
        end=last,
        risk_free_annual=config.risk_free_annual,
    )
    summary = _summary(oos, config, backtests, lagged, baselines, benchmark, optimizer)
    return Validation(oos, config, backtests, lagged, baselines, benchmark, optimizer, summary)


def validate_candidate(
    candidate: CandidateLayout,
    bars: pd.DataFrame,
    benchmark_bars: pd.DataFrame,
    label: LabelSpec,
    student_config: StudentConfig,
    reward_config: RewardConfig | None,
    config: EvaluationConfig,
    max_folds: int,
    sentiment: pd.DataFrame | None = None,
    on_fold: Callable[[Fold, int], None] | None = None,
) -> Validation:
    """Walk-forward the candidate's procedure with its own teachers, then :func:`validate`.

    With the reward loop on, the folds read the live rewards the candidate's bundle recorded
    as read (``reward_history/``, source ``live``), not the home's history, which has grown
    since. The summary also records the fold layout and how many teachers took part.
    """
    market = benchmark_bars.set_index("date")["close"]
    runs = json.loads(candidate.teacher_runs.read_text())["runs"]
    completed = [r["window_label"] for r in runs if r["status"] == "completed"]
    samples, teachers = distillation_inputs(
        bars, label, sentiment, market, {w: candidate.teacher_dir(w) for w in completed}
    )
    history = None
    if reward_config is not None and reward_config.enabled:
        history = read_reward_history(candidate.reward_files(), sources=[LIVE])
    oos, folds, walk_forward = candidate_walk_forward(
        samples,
        feature_columns(with_sentiment=sentiment is not None),
        teachers,
        student_config,
        reward_config,
        max_folds,
        on_fold,
        history,
        candidate.candidate_id,
    )
    validation = validate(oos, bars, benchmark_bars, config)
    layout = {
        "walk_forward": walk_forward.to_dict(),
        "fold_layout": [f.to_dict() for f in folds],
        "teachers_used": len(teachers),
    }
    return replace(validation, summary={**validation.summary, **layout})


def _summary(
    oos: pd.DataFrame,
    config: EvaluationConfig,
    backtests: dict[str, BacktestResult],
    lagged: BacktestResult,
    baselines: dict[str, pd.Series],
    benchmark: pd.Series,
    optimizer: OptimizationResult,
) -> dict[str, Any]:
    truth = oos["label"].to_numpy()
    rf = config.risk_free_annual
    folds = _fold_accuracies(oos)
    strategy = backtests[config.strategy]
    dates = strategy.portfolio_returns.index
    return {
        "out_of_sample": {
            "start": str(pd.Timestamp(dates.min()).date()),
            "end": str(pd.Timestamp(dates.max()).date()),
            "sessions": int(pd.Series(oos["date"]).nunique()),
            "backtest_sessions": len(dates),
            "samples": len(oos),
            "symbols": sorted(oos["symbol"].unique().tolist()),
            "folds": len(folds),
        },
        "classification": classification_report(truth, oos["predicted"].to_numpy()),
        "baselines_classification": {
            name: classification_report(truth, oos[column].to_numpy())
            for name, column in BASELINE_PREDICTIONS.items()
        },
        "folds": folds,
        "backtest": {
            mode: {
                **performance_summary(result.portfolio_returns, benchmark, rf),
                **_active(result),
                "turnover_per_session": float(result.turnover.mean()),
                "costs_paid": float(result.costs_paid.sum()),
                "dropped_rows": result.dropped_rows,
            }
            for mode, result in backtests.items()
        },
        "execution_lag": {
            "mode": config.strategy,
            "lag_sessions": lagged.lag_sessions,
            **_active(lagged),
            "on_time": _active(backtests[config.strategy]),
        },
        "baselines_backtest": {
            name: performance_summary(series, benchmark, rf) for name, series in baselines.items()
        },
        "per_symbol": _per_symbol(oos, strategy, rf),
        "optimizer": {
            "n_trials": optimizer.n_trials,
            "best_trial": optimizer.best_trial,
            "best_params": optimizer.best_params,
            "trials": _records(optimizer.trials),
        },
        "config": config.to_dict(),
    }


def _fold_accuracies(oos: pd.DataFrame) -> list[dict[str, Any]]:
    """Each fold's span and hit rate, beside every baseline's on the same rows."""
    folds = []
    for number, rows in oos.groupby("fold", sort=True):
        fold_truth = rows["label"].to_numpy()
        folds.append(
            {
                "fold": int(number),
                "start": str(pd.Timestamp(rows["date"].min()).date()),
                "end": str(pd.Timestamp(rows["date"].max()).date()),
                "samples": len(rows),
                "accuracy": float(np.mean(rows["predicted"].to_numpy() == fold_truth)),
                **{
                    f"{name}_accuracy": float(np.mean(rows[column].to_numpy() == fold_truth))
                    for name, column in BASELINE_PREDICTIONS.items()
                },
            }
        )
    return folds


def _per_symbol(oos: pd.DataFrame, strategy: BacktestResult, rf: float) -> list[dict[str, Any]]:
    """Each symbol's hit rate and its own book's return, Sharpe and drawdown."""
    per_symbol = []
    for symbol, rows in oos.groupby("symbol", sort=True):
        symbol_returns = strategy.symbol_returns[symbol].dropna()
        per_symbol.append(
            {
                "symbol": symbol,
                "samples": len(rows),
                "accuracy": float(np.mean(rows["predicted"] == rows["label"])),
                **_pick(performance_summary(symbol_returns, risk_free_annual=rf),
                        ("total_return", "sharpe", "max_drawdown")),
            }
        )  # fmt: skip
    return per_symbol


def _active(result: BacktestResult) -> dict[str, float | None]:
    """The book against the market: mean daily active return and its annualised Sharpe."""
    active = result.active_returns
    spread = float(active.std(ddof=1)) if len(active) > 1 else 0.0
    return {
        "active_mean_daily": float(active.mean()),
        "active_sharpe_annualized": (
            float(active.mean() / spread * np.sqrt(252)) if spread > 0 else None
        ),
    }


def _pick(values: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: values[key] for key in keys}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: NaN becomes None."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]
