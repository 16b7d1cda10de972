"""One session's calls from a saved student: the same numbers the student gives that day's
rows inside its training frame, from verified weights, and never from stale bars."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import (
    WARMUP_SESSIONS,
    LabelSpec,
    compute_features_panel,
    feature_columns,
)
from sensequant_assets.live.signals import (
    SIGNAL_COLUMNS,
    format_calls,
    history_start,
    score_day,
)
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.training.distillation import student_samples
from sensequant_assets.training.student import StudentConfig, predict_probabilities, train_student
from sensequant_assets.training.student_files import load_student, save_student
from sensequant_assets.universe import INDEX_SYMBOL, load_universe

CALENDAR = TradingCalendar()
START, END = dt.date(2021, 1, 1), dt.date(2024, 6, 28)
SYMBOLS = ("INFY", "RELIANCE", "TCS", "ITC", "SBIN", "LT")
DAY = CALENDAR.sessions(dt.date(2024, 6, 3), dt.date(2024, 6, 7))[2]


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.Series]:
    source = SyntheticSource(load_universe(), CALENDAR, seed=3, signal_ic=0.1)
    bars = pd.concat([source.fetch(s, START, END).assign(symbol=s) for s in SYMBOLS])
    index = source.fetch(INDEX_SYMBOL, START, END).set_index("date")["close"]
    return bars.reset_index(drop=True), index


@pytest.fixture(scope="module")
def student(market: tuple[pd.DataFrame, pd.Series], tmp_path_factory: pytest.TempPathFactory):
    bars, index = market
    samples = student_samples(bars, LabelSpec(), None, index)
    config = StudentConfig(lgbm_params={"num_iterations": 30})
    result = train_student(samples, None, list(feature_columns()), config)
    directory = save_student(result, tmp_path_factory.mktemp("student") / "student")
    return load_student(directory)


def test_a_day_scored_alone_matches_the_student_on_that_days_rows(market, student) -> None:
    bars, _ = market
    booster, metadata = student
    history = bars[pd.to_datetime(bars["date"]) >= pd.Timestamp(history_start(CALENDAR, DAY))]
    scores = score_day(booster, metadata, "live_candidate_x", history, DAY, SYMBOLS)
    assert scores.unscored == [] and list(scores.signals.columns) == list(SIGNAL_COLUMNS)
    assert sorted(scores.signals["symbol"]) == sorted(SYMBOLS)

    # The same rows inside the whole history's features (longer than the window read).
    assert pd.Timestamp(history_start(CALENDAR, DAY)) > pd.to_datetime(bars["date"]).min()
    names = metadata["feature_names"]
    full = compute_features_panel(bars.sort_values(["symbol", "date"]).reset_index(drop=True))
    rows = full[pd.to_datetime(full["date"]) == pd.Timestamp(DAY)].sort_values("symbol")
    expected = predict_probabilities(booster, rows.reset_index(drop=True), names, "rank")
    got = scores.signals[["p_down", "p_neutral", "p_up"]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    signals = scores.signals
    np.testing.assert_allclose(signals["score"], signals["p_up"] - signals["p_down"])
    assert set(signals["call"]) <= {-1, 0, 1}
    assert (signals["feature_date"] == pd.Timestamp(DAY)).all()


def test_later_bars_do_not_change_a_days_calls(market, student) -> None:
    bars, _ = market
    booster, metadata = student
    upto = bars[pd.to_datetime(bars["date"]) <= pd.Timestamp(DAY)]
    first = score_day(booster, metadata, "m", upto, DAY, SYMBOLS).signals
    again = score_day(booster, metadata, "m", bars, DAY, SYMBOLS).signals
    pd.testing.assert_frame_equal(first, again)


def test_a_symbol_without_todays_bar_is_reported_not_scored(market, student) -> None:
    bars, _ = market
    booster, metadata = student
    dropped = bars[
        ~((bars["symbol"] == "TCS") & (pd.to_datetime(bars["date"]) == pd.Timestamp(DAY)))
    ]
    universe = (*SYMBOLS, "HDFCBANK")
    scores = score_day(booster, metadata, "m", dropped, DAY, universe)
    previous = CALENDAR.previous_session(DAY).isoformat()
    assert scores.stale == {"TCS": previous}
    assert scores.without_bars == ["HDFCBANK"]
    assert "TCS" not in set(scores.signals["symbol"]) and len(scores.signals) == len(SYMBOLS) - 1
    summary = scores.summary(universe)
    assert summary["scored"] == len(SYMBOLS) - 1 and summary["universe"] == len(universe)
    assert summary["long"] + summary["neutral"] + summary["short"] == summary["scored"]


def test_too_short_a_history_leaves_features_incomplete(market, student) -> None:
    bars, _ = market
    booster, metadata = student
    short = bars[pd.to_datetime(bars["date"]) >= pd.Timestamp(CALENDAR.offset(DAY, -10))]
    scores = score_day(booster, metadata, "m", short, DAY, SYMBOLS)
    assert scores.signals.empty and scores.incomplete == sorted(SYMBOLS)


def test_the_calls_print_strongest_first(market, student) -> None:
    bars, _ = market
    booster, metadata = student
    signals = score_day(booster, metadata, "m", bars, DAY, SYMBOLS).signals
    lines = format_calls(signals)
    assert lines[0].split()[:3] == ["symbol", "call", "score"]
    printed = [float(line.split()[2]) for line in lines[1:]]
    assert printed == sorted(printed, reverse=True) and len(printed) == len(SYMBOLS)
    assert format_calls(signals.iloc[:0]) == ["no signals stored for this day"]


def test_a_student_trained_with_sentiment_needs_the_scores(student, market) -> None:
    booster, metadata = student
    with pytest.raises(ValueError, match="trained with sentiment"):
        score_day(booster, {**metadata, "feature_names": [*metadata["feature_names"],
                  "sentiment_score"]}, "m", market[0], DAY, SYMBOLS)  # fmt: skip


def test_history_start_covers_the_warm_up() -> None:
    first = history_start(CALENDAR, DAY)
    assert len(CALENDAR.sessions(first, DAY)) > WARMUP_SESSIONS
