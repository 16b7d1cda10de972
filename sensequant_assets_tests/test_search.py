"""The quarterly retrain's hyperparameter search: bounded, reproducible, blind to the evidence."""

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from sensequant_assets.artifacts import CandidateLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB
from sensequant_assets.evaluation.calibration import CalibrationSetup, synthetic_universe
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.evaluation.validation import validate_candidate
from sensequant_assets.evaluation.walk_forward import default_config, walk_forward_folds
from sensequant_assets.registry import StateManager
from sensequant_assets.release.manifest import read_manifest
from sensequant_assets.settings import load_settings
from sensequant_assets.training.candidate import build_candidate
from sensequant_assets.training.distillation import distillation_inputs
from sensequant_assets.training.resources import Training
from sensequant_assets.training.rewards import RewardConfig
from sensequant_assets.training.search import (
    SEARCH_SPACE,
    HyperparameterSearch,
    inner_split,
    searched_config,
    trial_params,
    with_params,
)
from sensequant_assets.training.split import Split, assert_no_leakage
from sensequant_assets.training.student import StudentConfig, holdout_start
from sensequant_assets.training.student_files import load_student
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.jobs import FIRST, ingest, ingest_benchmark, train
from sensequant_assets_tests.panels import FEATURES, build_panel
from sensequant_assets_tests.teachers import write_teacher

# Few, short boosters: the search's logic, not the student's quality, is under test.
SMALL_SPACE = {"distill_alpha": (0.25, 0.75), "num_iterations": (10, 30), "lambda_l2": (0.1, 10.0)}
BASE = StudentConfig(lgbm_params={"num_iterations": 20, "min_data_in_leaf": 20})


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return build_panel(0.15, 12).sort_values(["date", "symbol"]).reset_index(drop=True)


def test_trials_are_bounded_reproducible_and_start_from_the_configured_student() -> None:
    trials = trial_params(StudentConfig(), 8, SEARCH_SPACE, seed=3)
    assert trials == trial_params(StudentConfig(), 8, SEARCH_SPACE, seed=3)
    assert trials[0] == {"distill_alpha": 0.5, "learning_rate": 0.02, "num_iterations": 300,
                         "min_data_in_leaf": 300, "lambda_l2": 1.0}  # fmt: skip
    assert len({json.dumps(t, sort_keys=True) for t in trials}) == 8
    for trial in trials[1:]:
        assert all(trial[name] in values for name, values in SEARCH_SPACE.items())
        config = with_params(StudentConfig(), trial)
        assert config.distill_alpha == trial["distill_alpha"]
        assert config.lgbm_params["num_leaves"] == 2  # the stumps are not searched
    assert trials[1:] != trial_params(StudentConfig(), 8, SEARCH_SPACE, seed=4)[1:]
    small = {"num_iterations": (300, 600), "lambda_l2": (1.0, 10.0)}
    assert len(trial_params(StudentConfig(), 4, small, seed=0)) == 4
    with pytest.raises(ValueError, match="the configured student and the 3 other points"):
        trial_params(StudentConfig(), 5, small, seed=0)


def test_the_search_reads_nothing_of_the_out_of_sample_period(panel: pd.DataFrame) -> None:
    search = HyperparameterSearch(4, space=SMALL_SPACE)
    found = search.run(panel, [], FEATURES, BASE)
    record = found.record
    inner = record["inner_validation"]

    # the search's rows end where the candidate's walk-forward starts testing
    outer = default_config(panel["date"].nunique(), BASE.embargo_sessions)
    first_test = walk_forward_folds(panel["date"], panel["label_end"], outer)[0].test_start
    assert inner["out_of_sample_from"] == first_test.isoformat()
    assert inner["last_label_end"] < first_test.isoformat() < str(holdout_start(panel, BASE))
    rows = inner_split(panel, BASE)
    frame = panel.iloc[rows.region]
    train, validation = rows.inner.train_idx, rows.inner.test_idx
    assert_no_leakage(
        frame["date"], frame["label_end"],
        Split(train, validation, rows.inner.purged, rows.inner.test_start),
    )  # fmt: skip
    gap = frame["date"].drop_duplicates().sort_values().reset_index(drop=True)
    last_train = gap.searchsorted(pd.Timestamp(inner["train"][1]))
    assert gap.searchsorted(pd.Timestamp(inner["validation"][0])) - last_train > 7  # embargo

    # anything after that boundary can change without changing a single trial
    later = panel["date"] >= pd.Timestamp(first_test)
    rng = np.random.default_rng(0)
    scrambled = panel.copy()
    for column in ("label", "forward_return", *FEATURES):
        scrambled.loc[later, column] = rng.permutation(panel.loc[later, column].to_numpy())
    assert search.run(scrambled, [], FEATURES, BASE).record == record


def test_every_trial_is_kept_and_the_best_inner_score_is_chosen(panel: pd.DataFrame) -> None:
    found = HyperparameterSearch(5, space=SMALL_SPACE).run(panel, [], FEATURES, BASE)
    trials = found.record["trials"]
    assert [t["trial"] for t in trials] == [0, 1, 2, 3, 4]
    assert all(t["score"] is not None and t["days"] > 0 for t in trials)
    best = max(trials, key=lambda t: t["score"])
    assert [t["chosen"] for t in trials] == [t is best for t in trials]
    assert found.record["chosen"] == best["trial"]
    assert found.config == with_params(BASE, best["params"])
    assert found.summary["trials"] == 5 and found.summary["chosen"]["trial"] == best["trial"]


def test_too_few_symbols_to_rank_keep_the_configured_student(panel: pd.DataFrame) -> None:
    few = panel[panel["symbol"].isin(sorted(panel["symbol"].unique())[:3])].reset_index(drop=True)
    found = HyperparameterSearch(3, space=SMALL_SPACE).run(few, [], FEATURES, BASE)
    assert [t["score"] for t in found.record["trials"]] == [None, None, None]
    assert found.record["chosen"] == 0 and found.config == BASE


def test_a_history_too_short_to_search_is_refused(panel: pd.DataFrame) -> None:
    dates = panel["date"].drop_duplicates().sort_values()
    short = panel[panel["date"] <= dates.iloc[79]].reset_index(drop=True)
    with pytest.raises(ValueError, match="80 dates are too few for a search"):
        inner_split(short, BASE)


def test_a_searched_candidate_is_trained_and_recorded_with_the_chosen_trial(
    tmp_path: Path,
) -> None:
    setup = CalibrationSetup(n_symbols=8, start=dt.date(2023, 1, 1), end=dt.date(2023, 12, 31))
    bars, benchmark = synthetic_universe(5, 0.15, setup)
    market = benchmark.set_index("date")["close"]
    label = f"{sorted(bars['symbol'].unique())[0]}_2023-03-01_to_2023-08-27"
    write_teacher(tmp_path / "teachers" / label, label)
    layout = CandidateLayout(tmp_path / "live_candidate_20250401_100002")
    search = HyperparameterSearch(4, space=SMALL_SPACE)
    outcome = build_candidate(
        layout, tmp_path / "teachers", [label], bars, setup.label, BASE, RewardConfig(),
        market=market, search=search,
    )  # fmt: skip

    record = json.loads(layout.search_trials.read_text())
    samples, teachers = distillation_inputs(
        bars, setup.label, None, market, {label: layout.teacher_dir(label)}
    )
    assert record == json.loads(json.dumps(search.run(samples, teachers, FEATURES, BASE).record))
    chosen = record["trials"][record["chosen"]]
    assert record["chosen"] != 0  # premise: the search replaced the configured student
    expected = with_params(BASE, chosen["params"])
    student_runs = json.loads(layout.student_runs.read_text())
    assert student_runs["search"]["chosen"]["params"] == chosen["params"]
    assert student_runs["config"] == expected.to_dict() == outcome.result.config.to_dict()
    assert searched_config(student_runs, BASE) == expected  # what the walk-forward evaluates
    assert searched_config({}, BASE) == BASE
    _, metadata = load_student(layout.student_dir)
    assert metadata["config"]["distill_alpha"] == chosen["params"]["distill_alpha"]


@pytest.mark.slow
def test_the_quarterly_retrain_run_keeps_counts_and_briefs_every_trial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The quarterly retrain's tick on 2025-04-01 and the run it requests, as Dagster runs
    them: five symbols of one sector (so the sector-neutral rank IC is measurable) with a
    planted signal, three trials."""
    symbols = ["HCLTECH", "INFY", "TCS", "TECHM", "WIPRO"]
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", ",".join(symbols))
    monkeypatch.setenv("SENSEQUANT_SYNTHETIC_SIGNAL_IC", "0.15")
    monkeypatch.setenv("SENSEQUANT_SEARCH_TRIALS", "3")
    settings = load_settings()
    defs = build_defs(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        for symbol in symbols:
            ingest(settings, instance, symbol)
        ingest_benchmark(settings, instance)
        assert train(settings, instance, f"HCLTECH|{FIRST}", f"WIPRO|{FIRST}").success
        tick = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=dt.datetime(2025, 4, 1, 10, tzinfo=ZoneInfo("Asia/Kolkata")),
            repository_def=defs.get_repository_def(),
        )
        (request,) = defs.resolve_schedule_def("quarterly_retrain").evaluate_tick(tick).run_requests
        result = defs.resolve_job_def(CANDIDATE_JOB).execute_in_process(
            instance=instance, tags=request.tags
        )
    assert result.success
    student = result.asset_materializations_for_node("student_model")[0].metadata
    assert student["search_trials"].value == 3
    candidate = CandidateLayout(Path(str(student["candidate"].value)))
    assert candidate.candidate_id == "live_candidate_20250401_100002"
    record = json.loads(candidate.search_trials.read_text())
    assert len(record["trials"]) == 3 and sum(t["chosen"] for t in record["trials"]) == 1
    assert all(t["days"] > 0 for t in record["trials"])

    audit = settings.home / "release" / f"audit_{candidate.candidate_id}"
    dsr = json.loads((audit / "stat_tests.json").read_text())["dsr"]
    assert dsr["n_trials"] == len(dsr["selection"]["run_variants"]) + 3
    assert dsr["selection"]["search_trials"] == [f"search trial {i}" for i in range(3)]
    markdown = (audit / "promotion_briefing.md").read_text()
    assert "- Hyperparameter search: 3 trial(s) over distill_alpha (0.25, 0.5, 0.75)" in markdown
    assert f"N = {dsr['n_trials']}: 1 book(s) evaluated in this run (long_flat) + 3 search" in (
        markdown
    )
    manifest = read_manifest(audit)
    assert manifest["training"]["hyperparameter_search"]["chosen"]["trial"] == record["chosen"]
    assert f"{manifest['candidate_dir']}/search_trials.json" in manifest["artifacts"]

    # the walk-forward evaluated the configuration the search chose, not the settings' one
    assert record["chosen"] != 0  # premise: the two differ
    training = Training(settings, load_universe(), TradingCalendar())
    # the registry keeps the count, so later candidates on these dates count every trial
    registered = StateManager(training.layout.registry, read_only=True)
    assert registered.get_candidate_run(candidate.candidate_id).metrics["search_trials"] == 3
    evaluation = Evaluation(training)
    bars, benchmark = evaluation.market_data(candidate)
    stored = pd.read_parquet(audit / "oos_predictions.parquet")["p_up"].to_numpy()

    def walk_forward(config: StudentConfig) -> np.ndarray:
        validation = validate_candidate(
            candidate, bars, benchmark, training.teacher_config.label, config,
            training.reward_config, evaluation.config, settings.walk_forward_folds,
        )  # fmt: skip
        return validation.oos["p_up"].to_numpy()

    assert training.candidate_student_config(candidate) != training.student_config
    assert np.array_equal(walk_forward(training.candidate_student_config(candidate)), stored)
    assert not np.array_equal(walk_forward(training.student_config), stored)
