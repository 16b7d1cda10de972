"""The gate's operating characteristics: the results log, the intervals, the packaged figures,
and one real universe through the candidate's procedure (teachers included) on the bench's pool.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sensequant_assets.evaluation.gate import GATE_VERSION
from sensequant_assets.evaluation.power import (
    PACKAGED_FILE,
    PROTOCOL_VERSION,
    append_result,
    clopper_pearson,
    operating_characteristics,
    packaged_payload,
    read_results,
    result_key,
    summarize,
)

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``bench/bench_calibration.py`` as a module (spawned workers find it on sys.path too)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("bench_calibration")


def record(
    ic: float,
    seed: int,
    recommendation: str = "reject",
    lead: float | None = None,
    **changes: Any,
) -> dict:
    figures: dict[str, Any] = {"student_rank_ic": 0.01, "sessions": 335, "seconds": 200.0}
    if lead is not None:
        figures["student_minus_best"] = lead
    base = {
        "gate_version": GATE_VERSION,
        "protocol": PROTOCOL_VERSION,
        "ic": ic,
        "seed": seed,
        "n_symbols": 102,
        "start": "2022-01-01",
        "end": "2024-12-31",
        "recommendation": recommendation,
        "rules": [{"name": "rank_ic", "passed": recommendation == "approve", "value": 0.01}],
        "figures": figures,
    }
    return {**base, **changes}


def test_a_real_universe_runs_end_to_end_and_a_second_run_skips_it(
    bench: ModuleType, tmp_path: Path
) -> None:
    """Three symbols, one year, teachers per window, through the bench's own spawned pool."""
    results = tmp_path / "calibration.jsonl"
    tiny = [bench.Universe(0.05, 0, 3, dt.date(2024, 1, 1), dt.date(2024, 12, 31))]
    assert bench.run(bench.pending(tiny, results), 1, results, str(tmp_path)) == 0
    [line] = read_results(results)
    assert result_key(line) == tiny[0].key
    assert line["recommendation"] in ("approve", "needs_review", "reject")
    assert line["figures"]["teachers"] > 0 and line["figures"]["sessions"] > 0
    # recorded for the student-vs-baseline goal (None here: three symbols in three sectors
    # leave no sector-neutral rank IC to compare)
    assert {"best_baseline", "best_baseline_rank_ic", "student_minus_best"} <= set(line["figures"])
    assert line["rules"] and all({"name", "passed", "value"} <= set(r) for r in line["rules"])
    assert bench.pending(tiny, results) == []
    assert bench.run([], 1, results, str(tmp_path)) == 0
    assert len(read_results(results)) == 1
    assert not list(tmp_path.glob("sensequant-power-*"))  # the workers' scratch is gone


def test_an_unfinished_last_line_is_ignored_then_dropped(tmp_path: Path) -> None:
    results = tmp_path / "calibration.jsonl"
    append_result(results, record(0.0, 0))
    with results.open("ab") as handle:  # a kill in the middle of the next append
        handle.write(b'{"gate_version": 3, "ic": 0.0, "se')
    with pytest.warns(UserWarning, match="unfinished last line"):
        assert [r["seed"] for r in read_results(results)] == [0]
    with pytest.warns(UserWarning, match="dropping an unfinished last line"):
        append_result(results, record(0.0, 1))
    assert [r["seed"] for r in read_results(results)] == [0, 1]
    assert results.read_bytes().count(b"\n") == 2


def test_a_damaged_line_inside_the_log_is_an_error(tmp_path: Path) -> None:
    results = tmp_path / "calibration.jsonl"
    results.write_text(json.dumps(record(0.0, 0)) + "\nnot json\n" + json.dumps(record(0.0, 1)))
    with pytest.raises(ValueError, match=r"calibration.jsonl:2 is not a JSON record"):
        read_results(results)


def test_keys_compare_ics_by_value() -> None:
    assert result_key(record(0.05, 3)) == result_key(record(0.1 / 2, 3))
    assert result_key(record(0.05, 3)) != result_key(record(0.05, 3, n_symbols=30))


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (5, 10, 0.187086, 0.812914),  # as R's binom.test gives them
        (17, 20, 0.621073, 0.967929),
        (1, 60, 0.000422, 0.089399),
    ],
)
def test_clopper_pearson_matches_known_intervals(k: int, n: int, low: float, high: float) -> None:
    assert clopper_pearson(k, n) == pytest.approx((low, high), abs=2e-6)


def test_clopper_pearson_at_the_edges_has_a_closed_form() -> None:
    # k = 0: the upper end solves (1 - p)^n = 0.025; k = n: the lower end solves p^n = 0.025
    assert clopper_pearson(0, 20) == pytest.approx((0.0, 1 - 0.025 ** (1 / 20)))
    assert clopper_pearson(20, 20) == pytest.approx((0.025 ** (1 / 20), 1.0))
    with pytest.raises(ValueError):
        clopper_pearson(3, 2)


def test_summary_cells_count_approvals_per_version_ic_and_scale() -> None:
    records = [record(0.0, s) for s in range(9)] + [record(0.0, 9, "approve")]
    records += [record(0.05, s, "approve") for s in range(3)] + [record(0.05, 3, "needs_review")]
    records += [record(0.05, 0, "approve", gate_version=GATE_VERSION - 1)]
    cells = summarize(records)
    assert [(c["gate_version"], c["ic"], c["approved"], c["universes"]) for c in cells] == [
        (GATE_VERSION - 1, 0.05, 1, 1),
        (GATE_VERSION, 0.0, 1, 10),
        (GATE_VERSION, 0.05, 3, 4),
    ]
    null = cells[1]
    assert null["interval"] == pytest.approx(list(clopper_pearson(1, 10)))
    assert null["rule_failures"] == {"rank_ic": 9}
    assert cells[2]["needs_review"] == 1
    assert (null["baseline_universes"], null["student_minus_best"]) == (0, None)  # not recorded
    leads = summarize([record(0.03, s, lead=lead) for s, lead in enumerate((0.01, -0.002, 0.0))])
    assert leads[0]["baseline_universes"] == 3 and leads[0]["student_at_least_best"] == 2
    assert leads[0]["student_minus_best"] == pytest.approx(0.0)
    assert [c["gate_version"] for c in packaged_payload(cells)["cells"]] == [GATE_VERSION] * 2


def test_operating_characteristics_reads_only_the_current_gate_version() -> None:
    records = [record(0.0, s) for s in range(60)] + [record(0.05, s, "approve") for s in range(20)]
    records += [record(0.02, s, n_symbols=30) for s in range(20)]
    payload = packaged_payload(summarize(records))
    figures = operating_characteristics(102, 335, payload)
    assert figures is not None and figures["gate_version"] == GATE_VERSION
    assert figures["false_promotion"]["approved"] == 0
    assert figures["false_promotion"]["upper_bound"] == pytest.approx(1 - 0.025 ** (1 / 60))
    assert figures["false_promotion"]["scale"]["n_symbols"] == 102
    assert figures["power"]["0.05"]["rate"] == 1.0
    assert figures["power"]["0.02"]["scale"]["n_symbols"] == 30  # the only scale measured
    stale = {**payload, "gate_version": GATE_VERSION - 1}
    stale["cells"] = [{**c, "gate_version": GATE_VERSION - 1} for c in payload["cells"]]
    assert operating_characteristics(102, 335, stale) is None
    assert operating_characteristics(102, 335, {"cells": []}) is None


def test_the_nearest_measured_scale_answers() -> None:
    records = [record(0.0, s, n_symbols=102) for s in range(5)]
    records += [record(0.0, s, "approve", n_symbols=30) for s in range(5)]
    payload = packaged_payload(summarize(records))
    assert operating_characteristics(20, 335, payload)["false_promotion"]["rate"] == 1.0
    assert operating_characteristics(90, 335, payload)["false_promotion"]["rate"] == 0.0


def test_the_packaged_file_is_installed_and_readable() -> None:
    """What ``--summary`` wrote: None or the figures of this gate version, never an error."""
    assert resources.files("sensequant_assets.evaluation").joinpath(PACKAGED_FILE).is_file()
    figures = operating_characteristics(102, 335)
    assert figures is None or figures["gate_version"] == GATE_VERSION
