"""Stress windows: loading, skipping, replay against baselines, scores, failure modes, report."""

from __future__ import annotations

import json
import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation.backtest import next_session_returns
from sensequant_assets.evaluation.costs import CostModel
from sensequant_assets.evaluation.stress.replay import run_stress_tests
from sensequant_assets.evaluation.stress.report import write_stress_report
from sensequant_assets.evaluation.stress.result import STRATEGIES, StressResult
from sensequant_assets.evaluation.stress.scoring import (
    PASS_MARK,
    RESILIENCE_FORMULA,
    failure_mode,
    resilience_score,
)
from sensequant_assets.evaluation.stress.windows import StressWindow, load_stress_windows

COSTS = CostModel()  # delivery: 24 bp round trip + 5 bp slippage per side
SHORTS = CostModel(short_cost_bp_annual=100.0)  # and a borrow fee of 1% a year
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
DAYS = pd.bdate_range("2020-01-01", "2020-06-30")
CRASH = StressWindow("2020 crash", date(2020, 2, 20), date(2020, 3, 31), -0.30)
RALLY = StressWindow("2020 rally", date(2020, 4, 6), date(2020, 4, 30), None)
CALM = StressWindow("2020 calm", date(2020, 5, 4), date(2020, 5, 29), None)
OLD = StressWindow("2008 global financial crisis", date(2008, 1, 1), date(2009, 3, 31), -0.599)
SHORT = StressWindow("three days", date(2020, 6, 24), date(2020, 6, 26), None)
NEUTRAL_BAND = 0.002


def _inside(window: StressWindow, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    values = pd.DatetimeIndex(dates)
    return np.asarray((values >= pd.Timestamp(window.start)) & (values <= pd.Timestamp(window.end)))


@pytest.fixture(scope="module")
def panel() -> dict[str, object]:
    """4 symbols of daily closes: mild drift, a ≈ −35% crash, a rally and a calm month."""
    rng = np.random.default_rng(20200220)
    crash, rally = _inside(CRASH, DAYS), _inside(RALLY, DAYS)
    rows = []
    for symbol in SYMBOLS:
        daily = rng.normal(0.001, 0.01, len(DAYS))
        daily[crash] = rng.normal(-0.015, 0.01, crash.sum())
        daily[rally] = rng.normal(0.01, 0.01, rally.sum())
        closes = 100.0 * np.cumprod(1.0 + daily)
        rows += [(day, symbol, close) for day, close in zip(DAYS, closes, strict=True)]
    returns = next_session_returns(pd.DataFrame(rows, columns=["date", "symbol", "close"]))
    benchmark = returns.groupby("date")["next_return"].mean()  # an equal-weight "index"
    realised = returns["next_return"].to_numpy()
    label = np.where(realised > NEUTRAL_BAND, 2.0, np.where(realised < -NEUTRAL_BAND, 0.0, 1.0))
    label[np.isnan(realised)] = np.nan
    base = returns[["date", "symbol"]].assign(label=label)
    perfect = np.where(realised > 0, 2, 0)
    return {
        "returns": returns,
        "benchmark": benchmark,
        "perfect": base.assign(predicted=perfect),
        "always_up": base.assign(predicted=2),
        "always_down": base.assign(predicted=0),
        # right everywhere except inside CALM, where every call is inverted
        "broken_in_calm": base.assign(
            predicted=np.where(_inside(CALM, base["date"]), 2 - perfect, perfect)
        ),
    }


def _run(panel: dict[str, object], student: str, windows: list[StressWindow]) -> StressResult:
    return run_stress_tests(
        panel[student], panel["returns"], panel["benchmark"], windows, COSTS, min_sessions=5
    )


def _window(result: StressResult, name: str) -> dict:
    (found,) = [w for w in result.windows if w["name"] == name]
    return found


# --------------------------------------------------------------------------- loading


def test_packaged_windows_load() -> None:
    windows = load_stress_windows()
    assert len(windows) == 10
    first = windows[0]
    assert first.name == "2008 global financial crisis"
    assert (first.start, first.end) == (date(2008, 1, 1), date(2009, 3, 31))
    assert first.benchmark_max_drawdown == pytest.approx(-0.599)
    assert len({w.name for w in windows}) == 10
    assert all(w.start <= w.end for w in windows)
    assert all(-1.0 <= w.benchmark_max_drawdown <= 0.0 for w in windows)


def test_user_file_loads_with_optional_drawdown_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        "name,start,end,nifty50_max_drawdown,note\n"
        "Adani short report,2023-01-24,2023-02-28,,hindenburg\n"
        "2024 election day, 2024-06-03 , 2024-06-07 ,-0.059,\n"
        "\n",
        encoding="utf-8",
    )
    windows = load_stress_windows(path)
    assert [w.name for w in windows] == ["Adani short report", "2024 election day"]
    assert windows[0].benchmark_max_drawdown is None
    assert windows[1].start == date(2024, 6, 3)
    assert windows[1].benchmark_max_drawdown == pytest.approx(-0.059)


@pytest.mark.parametrize(
    ("second_row", "row", "column", "why"),
    [
        ("Bad,2020-13-01,2020-12-31,-0.1", 2, "start", "not a valid date"),
        ("Bad,01/02/2020,2020-12-31,-0.1", 2, "start", "not an ISO date"),
        ("Bad,2020-03-01,2020-02-01,-0.1", 2, "end", "before start"),
        ("2020 covid,2020-01-14,2020-03-31,-0.3", 2, "name", "duplicate"),
        ("Bad,2020-01-01,2020-02-01,0.3", 2, "nifty50_max_drawdown", "negative fraction"),
        ("Bad,2020-01-01,2020-02-01,lots", 2, "nifty50_max_drawdown", "not a number"),
        (",2020-01-01,2020-02-01,-0.1", 2, "name", "empty name"),
    ],
)
def test_user_file_errors_name_file_row_and_column(
    tmp_path: Path, second_row: str, row: int, column: str, why: str
) -> None:
    path = tmp_path / "windows.csv"
    header = "name,start,end,nifty50_max_drawdown\n"
    path.write_text(header + "2020 COVID,2020-01-14,2020-03-31,-0.384\n" + second_row + "\n")
    with pytest.raises(ValueError) as caught:
        load_stress_windows(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"row {row} (line {row + 1})" in message
    assert f"column '{column}'" in message
    assert why in message


def test_user_file_missing_column_or_file(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    path.write_text("name,start,nifty50_max_drawdown\nX,2020-01-01,-0.1\n")
    with pytest.raises(ValueError, match=r"windows\.csv: missing required column\(s\) \['end'\]"):
        load_stress_windows(path)
    with pytest.raises(ValueError, match="not found"):
        load_stress_windows(tmp_path / "absent.csv")
    header_only = tmp_path / "empty.csv"
    header_only.write_text("name,start,end\n")
    with pytest.raises(ValueError, match="no stress windows"):
        load_stress_windows(header_only)


def test_window_rejects_start_after_end() -> None:
    with pytest.raises(ValueError, match="after end"):
        StressWindow("x", date(2020, 2, 1), date(2020, 1, 1))


# --------------------------------------------------------------------------- skipping


def test_window_without_data_is_skipped_not_failed(panel: dict[str, object]) -> None:
    result = _run(panel, "perfect", [OLD, CRASH])
    old = _window(result, OLD.name)
    assert old["status"] == "skipped"
    assert old["reason"] == (
        "no out-of-sample predictions between 2008-01-01 and 2009-03-31 (data starts 2020-01-01)"
    )
    assert old["score"] is None and old["failure_mode"] is None and old["passed"] is None
    assert (result.evaluated, result.skipped) == (1, 1)
    assert result.overall_score == pytest.approx(_window(result, CRASH.name)["score"])
    assert result.passed


def test_window_with_too_few_sessions_is_skipped(panel: dict[str, object]) -> None:
    result = _run(panel, "perfect", [SHORT])
    short = _window(result, SHORT.name)
    assert short["status"] == "skipped"
    assert short["reason"].startswith("only 3 sessions of predictions")
    assert short["reason"].endswith("need 5")
    assert short["sessions"] == 3
    assert result.overall_score is None and result.passed is False
    assert result.evaluated == 0 and result.skipped == 1
    json.dumps(result.to_dict(), allow_nan=False)


def test_last_session_without_next_return_does_not_count(panel: dict[str, object]) -> None:
    # the panel's last day (2020-06-30) has no next return: 5 prediction dates, 4 usable
    window = StressWindow("tail", date(2020, 6, 24), date(2020, 6, 30))
    (entry,) = _run(panel, "perfect", [window]).windows
    assert entry["status"] == "skipped"
    assert "only 4 sessions" in entry["reason"]
    assert "1 prediction date(s) lack a known next-session return" in entry["reason"]


# --------------------------------------------------------------------------- replay and score


def test_perfect_predictor_beats_always_up_through_a_crash(panel: dict[str, object]) -> None:
    perfect = _window(_run(panel, "perfect", [CRASH]), CRASH.name)
    always_up = _window(_run(panel, "always_up", [CRASH]), CRASH.name)

    assert perfect["status"] == always_up["status"] == "evaluated"
    assert perfect["sessions"] == always_up["sessions"] == 29
    assert perfect["score"] > always_up["score"]
    assert perfect["score"] >= PASS_MARK > always_up["score"]
    for entry in (perfect, always_up):
        assert 0.0 <= entry["score"] <= 100.0
        assert set(entry["metrics"]) == set(STRATEGIES)

    # always long every symbol = buy-and-hold of the same keys, but for the entry costs
    student, holding = always_up["metrics"]["student"], always_up["metrics"]["buy_and_hold"]
    assert student["max_drawdown"] == pytest.approx(holding["max_drawdown"], abs=0.003)
    assert holding["max_drawdown"] < -0.30
    assert student["exposure"] == pytest.approx(1.0)
    assert always_up["market_max_drawdown"] < -0.30
    assert always_up["market_drawdown_source"] == "benchmark_returns"
    assert always_up["failure_mode"] == "black_swan"
    assert perfect["failure_mode"] == "none"

    # up precision: the share of long calls whose realised class is up; cash is flat
    window_rows = panel["perfect"][_inside(CRASH, panel["perfect"]["date"])]
    long_calls = window_rows[window_rows["predicted"] == 2]
    assert perfect["classification"]["up_calls"] == len(long_calls) > 0
    assert perfect["classification"]["up_precision"] == pytest.approx(
        (long_calls["label"] == 2).mean()
    )
    assert always_up["classification"]["up_precision"] == pytest.approx(
        always_up["classification"]["accuracy"]
    )
    assert perfect["metrics"]["cash"]["total_return"] == 0.0
    assert perfect["metrics"]["cash"]["sharpe"] is None
    assert always_up["classification"]["majority_class"] == "down"


def test_flat_student_is_not_perfect_and_fails_a_rally(panel: dict[str, object]) -> None:
    result = _run(panel, "always_down", [CRASH, RALLY])
    crash, rally = _window(result, CRASH.name), _window(result, RALLY.name)
    assert crash["metrics"]["student"]["exposure"] == 0.0
    assert crash["score_components"]["drawdown_protection"] == 100.0
    assert crash["score_components"]["directional_skill"] <= 50.0
    assert crash["score"] < 100.0
    assert rally["score"] < PASS_MARK
    assert rally["score_components"]["relative_return"] < 10.0


def test_regime_change_when_accuracy_collapses_in_a_quiet_window(
    panel: dict[str, object],
) -> None:
    result = _run(panel, "broken_in_calm", [CRASH, CALM])
    calm = _window(result, CALM.name)
    assert calm["failure_mode"] == "regime_change"
    assert calm["classification"]["accuracy"] < 0.2
    assert result.out_of_stress["accuracy"] > 0.8
    assert _window(result, CRASH.name)["failure_mode"] == "none"


def test_overall_is_the_session_weighted_mean(panel: dict[str, object]) -> None:
    result = _run(panel, "always_up", [CRASH, RALLY, CALM, OLD])
    evaluated = [w for w in result.windows if w["status"] == "evaluated"]
    assert len(evaluated) == 3 and result.skipped == 1
    expected = sum(w["score"] * w["sessions"] for w in evaluated) / sum(
        w["sessions"] for w in evaluated
    )
    assert result.overall_score == pytest.approx(expected)
    assert result.passed == (expected >= PASS_MARK)
    assert len({w["sessions"] for w in evaluated}) > 1  # the weighting matters
    assert all(0.0 <= w["score"] <= 100.0 for w in evaluated)


def test_resilience_score_components() -> None:
    same = resilience_score(
        student_max_drawdown=-0.2,
        buy_and_hold_max_drawdown=-0.2,
        student_total_return=-0.1,
        buy_and_hold_total_return=-0.1,
        accuracy=0.5,
        majority_share=0.5,
        student_sharpe=-1.0,
        sixty_forty_sharpe=-1.0,
    )
    assert same[1] == {
        "drawdown_protection": 0.0,
        "relative_return": 50.0,
        "directional_skill": 50.0,
        "risk_adjusted": 50.0,
    }
    assert same[0] == pytest.approx(37.5)
    score, parts = resilience_score(
        student_max_drawdown=0.0,
        buy_and_hold_max_drawdown=-0.001,  # below the 1% floor
        student_total_return=0.1,
        buy_and_hold_total_return=0.0,
        accuracy=1.0,
        majority_share=0.6,
    )
    assert parts["drawdown_protection"] == 100.0
    assert parts["directional_skill"] == 100.0
    assert parts["risk_adjusted"] is None
    assert parts["relative_return"] == pytest.approx(
        100.0 / (1.0 + math.exp(-math.log(1.1) / 0.05))
    )
    assert score == pytest.approx((200.0 + parts["relative_return"]) / 3)


def test_failure_mode_rules() -> None:
    calm = {
        "market_max_drawdown": -0.05,
        "student_max_drawdown": -0.045,
        "buy_and_hold_max_drawdown": -0.05,
        "accuracy_in_window": 0.50,
        "accuracy_outside": 0.55,
        "student_total_return": -0.03,
        "cash_total_return": 0.001,
        "buy_and_hold_total_return": -0.02,
        "student_total_return_outside": 0.30,
        "buy_and_hold_total_return_outside": 0.20,
    }
    assert failure_mode(**calm)[0] == "overfit"
    assert failure_mode(**{**calm, "student_total_return_outside": 0.1})[0] == "none"
    assert failure_mode(**{**calm, "accuracy_in_window": 0.40})[0] == "regime_change"
    crash = {**calm, "market_max_drawdown": -0.2, "accuracy_in_window": 0.40}
    assert failure_mode(**crash)[0] == "black_swan"  # first matching rule wins
    protected = {**crash, "student_max_drawdown": -0.01}
    assert failure_mode(**protected)[0] == "regime_change"
    assert failure_mode(**{**protected, "accuracy_outside": None})[0] == "none"


def test_input_validation(panel: dict[str, object]) -> None:
    bad = panel["perfect"].assign(predicted=3)
    with pytest.raises(ValueError, match=r"'predicted'.*not a class"):
        run_stress_tests(bad, panel["returns"], panel["benchmark"], [CRASH], COSTS)
    with pytest.raises(ValueError, match="min_sessions"):
        run_stress_tests(
            panel["perfect"], panel["returns"], panel["benchmark"], [CRASH], COSTS, min_sessions=1
        )
    with pytest.raises(ValueError, match="duplicate stress window"):
        run_stress_tests(
            panel["perfect"], panel["returns"], panel["benchmark"], [CRASH, CRASH], COSTS
        )


def test_missing_benchmark_falls_back_to_the_window_file(panel: dict[str, object]) -> None:
    empty = pd.Series([], index=pd.DatetimeIndex([]), dtype="float64")
    result = run_stress_tests(panel["always_up"], panel["returns"], empty, [CRASH], COSTS)
    (crash,) = result.windows
    assert crash["market_max_drawdown"] == pytest.approx(-0.30)
    assert crash["market_drawdown_source"] == "stress_windows_file"
    assert crash["metrics"]["sixty_forty"]["sessions"] == 0
    assert crash["score_components"]["risk_adjusted"] is None
    assert crash["failure_mode"] == "black_swan"
    json.dumps(result.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- report


def test_report_files(panel: dict[str, object], tmp_path: Path) -> None:
    result = _run(panel, "always_up", [OLD, CRASH, SHORT, CALM])
    out = tmp_path / "stress"
    written = write_stress_report(result, out)

    summary_path, report_path = out / "stress_summary.json", out / "stress_report.md"
    assert written["stress_summary.json"] == summary_path
    assert written["stress_report.md"] == report_path
    for path in written.values():
        assert path.is_file() and path.stat().st_size > 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "2020-calm_drawdown.png",
        "2020-calm_equity.png",
        "2020-crash_drawdown.png",
        "2020-crash_equity.png",
    ]
    assert sorted(name for name in written if name.endswith(".png")) == pngs

    summary = json.loads(summary_path.read_text())
    json.dumps(summary, allow_nan=False)
    assert summary == json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert summary["resilience_formula"] == RESILIENCE_FORMULA
    assert summary["evaluated"] == 2 and summary["skipped"] == 2
    assert [w["status"] for w in summary["windows"]] == [
        "skipped",
        "evaluated",
        "skipped",
        "evaluated",
    ]

    markdown = report_path.read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert sorted(linked) == pngs
    assert all((out / name).is_file() for name in linked)
    assert "data starts 2020-01-01" in markdown
    assert "black_swan" in markdown
    # Markdown read with cat: "buy & hold", "<=" as written, no HTML entities
    assert "buy & hold" in markdown and "<=" in markdown
    assert not re.search(r"&(amp|lt|gt|quot|#\d+);", markdown)


def test_long_short_replay_profits_from_down_calls_in_a_crash(panel: dict[str, object]) -> None:
    def student(mode: str) -> dict:
        result = run_stress_tests(
            panel["always_down"], panel["returns"], panel["benchmark"], [CRASH], SHORTS, mode=mode
        )
        assert result.settings["mode"] == mode
        return _window(result, CRASH.name)["metrics"]["student"]

    flat, short = student("long_flat"), student("long_short")
    assert flat["total_return"] == 0.0 and flat["exposure"] == 0.0
    assert short["total_return"] > 0.3 and short["exposure"] == pytest.approx(1.0)
