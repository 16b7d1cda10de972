"""What the training stages share, built once per process from the settings (Dagster-free).

:class:`Training` turns the settings into the teacher, student and reward configs and reads the
warehouse as features and labels need it: back-adjusted for the listed splits and bonuses
(:attr:`Training.warehouse`), so every stage after ingestion, validation and stress tests
included, reads the same adjusted bars. The Dagster assets receive it as a resource
(``dg.ResourceParam[Training]``); the historical run and the gate's power simulation build it
directly. :func:`teacher_window_keys` names the training windows the settings define (the teacher
partitions), :func:`latest_complete_window` the latest one the stored data completes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from sensequant_assets.artifacts import ArtifactLayout, CandidateLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import WARMUP_SESSIONS, LabelSpec
from sensequant_assets.quality.corporate_actions import AdjustedWarehouse, load_corporate_actions
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.reservation import reserve, reserve_new
from sensequant_assets.settings import Settings
from sensequant_assets.storage import Warehouse
from sensequant_assets.training.candidate import CandidateOutcome, build_candidate
from sensequant_assets.training.reward_history import read_reward_history
from sensequant_assets.training.rewards import RewardConfig
from sensequant_assets.training.search import HyperparameterSearch, searched_config
from sensequant_assets.training.student import StudentConfig
from sensequant_assets.training.teacher import TeacherConfig
from sensequant_assets.training.windows import (
    TrainingWindow,
    span_key,
    window_data_range,
    window_spans,
)
from sensequant_assets.universe import INDEX_SYMBOL, Universe

BENCHMARK_TABLE = "nifty50_benchmark"


@dataclass
class Training:
    """What training assets share, built once per process from the settings."""

    settings: Settings
    universe: Universe
    calendar: TradingCalendar

    @cached_property
    def layout(self) -> ArtifactLayout:
        return ArtifactLayout.of(self.settings)

    @cached_property
    def warehouse(self) -> AdjustedWarehouse:
        """The curated bars as features and labels read them: back-adjusted."""
        return AdjustedWarehouse(
            Warehouse.from_settings(self.settings), load_corporate_actions(self.settings)
        )

    @cached_property
    def teacher_config(self) -> TeacherConfig:
        s = self.settings
        label = LabelSpec(
            horizon=s.label_horizon,
            mode=s.label_mode,
            reference=s.label_reference,
            threshold=s.label_threshold,
            vol_multiplier=s.label_vol_multiplier,
        )
        return TeacherConfig(label=label, min_samples=s.min_samples)

    @cached_property
    def student_config(self) -> StudentConfig:
        return StudentConfig(
            distill_alpha=self.settings.distill_alpha,
            embargo_sessions=self.settings.label_horizon,
        )

    def candidate_student_config(self, candidate: CandidateLayout) -> StudentConfig:
        """What ``candidate``'s student was trained with: :attr:`student_config`, with the
        parameters its hyperparameter search chose (the walk-forward must evaluate those)."""
        return searched_config(json.loads(candidate.student_runs.read_text()), self.student_config)

    def hyperparameter_search(self) -> HyperparameterSearch:
        """The quarterly retrain's search: ``SENSEQUANT_SEARCH_TRIALS`` trials, scored by the
        sector-neutral rank IC of the candidate's own procedure."""
        return HyperparameterSearch(
            self.settings.search_trials, self.universe.sectors, self.reward_config
        )

    def market_closes(
        self, first: dt.date, last: dt.date, read: pd.Series | None = None
    ) -> pd.Series | None:
        """Benchmark closes by date over ``[first, last]`` when labels are market-relative;
        sliced from ``read`` (closes already read over a wider span) when given."""
        if self.teacher_config.label.reference != "market":
            return None
        stored = read if read is not None else self.benchmark_closes(first, last)
        closes = stored.loc[pd.Timestamp(first) : pd.Timestamp(last)]
        if closes.empty:
            raise LookupError(
                f"market-relative labels need {INDEX_SYMBOL} closes from {first} to {last}: "
                "materialize nifty50_benchmark over those dates first, or set "
                "SENSEQUANT_LABEL_REFERENCE=absolute"
            )
        return closes

    def benchmark_closes(self, first: dt.date, last: dt.date) -> pd.Series:
        """Stored NIFTY 50 closes by date over ``[first, last]``; empty when none are stored."""
        rows = self.warehouse.bars(BENCHMARK_TABLE, INDEX_SYMBOL, first, last)
        if rows.empty:
            return pd.Series(dtype=float, index=pd.DatetimeIndex([], name="date"), name="close")
        return rows.set_index("date")["close"]

    @property
    def sentiment_enabled(self) -> bool:
        return self.settings.sentiment_headlines_file is not None

    def sentiment_frame(
        self, where: str = "true", params: list[object] | None = None
    ) -> pd.DataFrame | None:
        """Stored ``sentiment_snapshots`` rows, or None when sentiment is off."""
        if not self.sentiment_enabled:
            return None
        frame = self.warehouse.query("sentiment_snapshots", where, params or [])
        if frame.empty:
            return pd.DataFrame(
                {
                    "date": pd.Series(dtype="datetime64[ns]"),
                    "symbol": pd.Series(dtype=str),
                    "sentiment_score": pd.Series(dtype=float),
                }
            )
        return frame[["date", "symbol", "sentiment_score"]]

    def sentiment_of(self, symbol: str, first: dt.date, last: dt.date) -> pd.Series | None:
        """Daily scores of one symbol by date (an empty Series: no headline stored yet)."""
        frame = self.sentiment_frame("symbol = ? and date between ? and ?", [symbol, first, last])
        if frame is None:
            return None
        return frame.set_index("date")["sentiment_score"]

    def reserve_candidate(self, owner: str, candidate_id: str | None) -> CandidateLayout:
        """The bundle of ``candidate_id`` (or of a fresh id), reserved for ``owner``: an id
        another owner holds raises
        :class:`~sensequant_assets.registry.reservation.CandidateTakenError`, before anything
        is written."""
        registry = StateManager(self.layout.registry)
        if candidate_id is None:
            return self.layout.candidate(reserve_new(registry, self.layout, owner))
        candidate = self.layout.candidate(candidate_id)
        reserve(registry, candidate_id, owner)
        return candidate

    def reward_history(self, symbols: Sequence[str]) -> pd.DataFrame:
        """The live rewards recorded for ``symbols`` (``data/reward_history/``)."""
        return read_reward_history(self.layout.reward_file(s) for s in symbols)

    def build_candidate(
        self,
        candidate: CandidateLayout,
        window_labels: list[str],
        bars: pd.DataFrame,
        search: HyperparameterSearch | None = None,
    ) -> CandidateOutcome:
        """Distil the stored teachers of ``window_labels`` into a student under ``candidate``,
        with the configuration ``search`` chooses when given (with the reward loop on,
        weighted by the live rewards recorded for its symbols too)."""
        dates = pd.to_datetime(bars["date"])
        market = self.market_closes(dates.min().date(), dates.max().date())
        history = None
        if self.reward_config.enabled:
            history = self.reward_history(sorted(bars["symbol"].unique()))
        return build_candidate(
            candidate,
            self.layout.teachers_dir,
            window_labels,
            bars,
            self.teacher_config.label,
            self.student_config,
            self.reward_config,
            self.sentiment_frame(),
            market,
            search=search,
            reward_history=history,
        )

    @cached_property
    def reward_config(self) -> RewardConfig:
        s = self.settings
        return RewardConfig(
            enabled=s.reward_loop_enabled,
            horizon_days=s.label_horizon,
            clip_min=s.reward_clip_min,
            clip_max=s.reward_clip_max,
            weighting_mode=s.reward_weighting_mode,
            weighting_scale=s.reward_weighting_scale,
            ab_testing_enabled=s.reward_ab_testing_enabled,
            decay=s.reward_decay,
            retrain_window=s.reward_retrain_window,
        )


def teacher_window_keys(settings: Settings, calendar: TradingCalendar, today: dt.date) -> list[str]:
    """Window keys from the first session with a full feature warm-up up to today."""
    sessions = calendar.sessions(
        settings.history_start, settings.history_start + dt.timedelta(days=120)
    )
    first = sessions[min(WARMUP_SESSIONS, len(sessions) - 1)]
    if first > today:
        return []
    spans = window_spans(first, today, settings.window_days, settings.window_step_days)
    return [span_key(start, end) for start, end in spans]


def latest_complete_window(
    windows: Sequence[str],
    symbols: Sequence[str],
    calendar: TradingCalendar,
    horizon: int,
    last_stored: dt.date | None,
) -> str | None:
    """The latest window whose data (warm-up, window, label horizon) ends by ``last_stored``."""
    if last_stored is None or not symbols:
        return None
    complete = [
        key
        for key in windows
        if window_data_range(
            TrainingWindow.from_span_key(symbols[0], key), calendar, WARMUP_SESSIONS, horizon
        )[1]
        <= last_stored
    ]
    return complete[-1] if complete else None
