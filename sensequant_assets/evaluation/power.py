"""The promotion gate's operating characteristics: false promotions and power, by simulation.

The gate is a test, and a test is known by two numbers: how often it approves when there is
nothing to find (false promotions) and how often it approves a real signal of a given size
(power). Both can only be measured where the truth is known, so :func:`evaluate_universe`
runs one synthetic universe (``sources.synthetic``, a planted signal of known daily rank IC)
through the domain calls a historical run makes — a teacher per symbol × window
(``train_teacher``, windows as ``teacher_window_keys`` and the historical run choose them),
the candidate bundle and its soft targets (``build_candidate``), the candidate's walk-forward
and validation (``validate_candidate``), ``statistical_tests`` read back from JSON as the gate
asset reads ``stat_tests.json``, and ``decide`` — with the settings a candidate gets when no
environment variable is set (:func:`candidate_settings`). No Dagster, no warehouse: teachers
and the bundle live in a temporary directory.

Each universe becomes one JSON line of an append-only log (``bench/results/calibration.jsonl``)
keyed by :data:`KEY_FIELDS`, so a long grid survives being stopped. :func:`summarize` groups
the log into cells (gate version, protocol, IC, scale) with Clopper–Pearson intervals; the
packaged ``operating_characteristics.json`` holds the current gate's cells, and
:func:`operating_characteristics` reads them for the briefing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from scipy.stats import beta

from sensequant_assets.artifacts import ScratchLayout, teacher_dir
from sensequant_assets.atomic import append_durable, fsync_path
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.evaluation.gate import GATE_VERSION, decide
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.evaluation.stat_tests import statistical_tests
from sensequant_assets.evaluation.validation import validate_candidate
from sensequant_assets.features import WARMUP_SESSIONS
from sensequant_assets.settings import Settings
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.sources.synthetic_signal import signal_ics
from sensequant_assets.training import TrainingWindow, window_data_range
from sensequant_assets.training.candidate import build_candidate
from sensequant_assets.training.resources import Training, teacher_window_keys
from sensequant_assets.training.teacher import train_teacher
from sensequant_assets.universe import INDEX_SYMBOL, Universe, load_universe

# Bumped whenever what one universe measures changes (the candidate path, its settings, the
# synthetic model's meaning of IC): results of another protocol are not pooled with these.
PROTOCOL_VERSION = 2  # 2: nested stress windows no longer add their depths (2022)
KEY_FIELDS = ("gate_version", "protocol", "ic", "seed", "n_symbols", "start", "end")
CELL_FIELDS = ("gate_version", "protocol", "ic", "n_symbols", "start", "end")
CONFIDENCE = 0.95
PACKAGED_FILE = "operating_characteristics.json"


def candidate_settings(start: dt.date) -> Settings:
    """Every setting at its default (no environment, no ``.env``), history from ``start``."""
    return Settings.model_construct(history_start=start)


def candidate_resources(start: dt.date) -> tuple[Training, Evaluation]:
    """The resources whose properties turn settings into a candidate's configs (label spec,
    teacher, student, reward and evaluation configs, gate thresholds), exactly as the assets
    get them.
    """
    training = Training(candidate_settings(start), load_universe(), TradingCalendar())
    return training, Evaluation(training)


def universe_symbols(universe: Universe, n_symbols: int) -> list[str]:
    """The first ``n_symbols`` default symbols: ETFs included, as a candidate on the default
    symbols has them (all 102 are the NIFTY 100 scale)."""
    if not 1 <= n_symbols <= len(universe.default_symbols):
        raise ValueError(f"n_symbols must lie in [1, {len(universe.default_symbols)}]")
    return universe.default_symbols[:n_symbols]


def universe_bars(
    source: SyntheticSource, symbols: Sequence[str], start: dt.date, end: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(bars, benchmark)`` of the symbols and the NIFTY 50, ordered like warehouse rows."""
    bars = pd.concat(
        [source.fetch(s, start, end).assign(symbol=s) for s in symbols], ignore_index=True
    )
    benchmark = source.fetch(INDEX_SYMBOL, start, end).assign(symbol=INDEX_SYMBOL)
    order = ["date", "symbol"]
    return (
        bars.sort_values(order, ignore_index=True),
        benchmark.sort_values(order, ignore_index=True),
    )


def teacher_windows(
    symbols: Sequence[str], training: Training, start: dt.date, end: dt.date
) -> list[TrainingWindow]:
    """The windows a historical run over ``[start, end]`` trains: the teacher partitions
    whose data range (warm-up before, label horizon after) lies inside the dates."""
    horizon = training.teacher_config.label.horizon
    keys = []
    for key in teacher_window_keys(training.settings, training.calendar, end):
        window = TrainingWindow.from_span_key(symbols[0], key)
        first, last = window_data_range(window, training.calendar, WARMUP_SESSIONS, horizon)
        if first >= start and last <= end:
            keys.append(key)
    return [TrainingWindow.from_span_key(s, k) for k in keys for s in symbols]


def train_teachers(
    windows: Iterable[TrainingWindow],
    bars: pd.DataFrame,
    market: pd.Series,
    training: Training,
    root: Path,
) -> list[str]:
    """Train every window as ``training.runner.train_window`` does, from ``bars`` instead of the
    warehouse; returns the window labels (completed or not, as the student asset passes)."""
    horizon = training.teacher_config.label.horizon
    by_symbol = {s: rows.reset_index(drop=True) for s, rows in bars.groupby("symbol", sort=False)}
    latest = {s: pd.Timestamp(rows["date"].max()).date() for s, rows in by_symbol.items()}
    labels = []
    for window in windows:
        first, last = window_data_range(window, training.calendar, WARMUP_SESSIONS, horizon)
        rows = by_symbol[window.symbol]
        inside = (rows["date"] >= pd.Timestamp(first)) & (rows["date"] <= pd.Timestamp(last))
        train_teacher(
            window,
            rows.loc[inside].reset_index(drop=True),
            training.teacher_config,
            training.calendar,
            latest[window.symbol],
            teacher_dir(root, window.label),
            None,
            training.market_closes(first, last, market),
        )
        labels.append(window.label)
    return labels


def evaluate_universe(
    seed: int, ic: float, n_symbols: int, start: dt.date, end: dt.date, workdir: Path
) -> dict[str, Any]:
    """One universe through the candidate's procedure and the gate: one result record.

    ``workdir`` (an empty directory) receives the teachers and the candidate bundle.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        seconds[stage] = round(now - since, 2)
        return now

    training, evaluation = candidate_resources(start)
    label, student = training.teacher_config.label, training.student_config
    symbols, bars, benchmark, planted = _universe(training, seed, ic, n_symbols, start, end)
    market = benchmark.set_index("date")["close"]
    windows = teacher_windows(symbols, training, start, end)
    t = lap("data", started)
    scratch = ScratchLayout(workdir)
    labels = train_teachers(windows, bars, market, training, scratch.teachers_dir)
    t = lap("teachers", t)
    dates = pd.to_datetime(bars["date"])
    candidate = scratch.candidate
    outcome = build_candidate(
        candidate, scratch.teachers_dir, labels, bars, label, student,
        training.reward_config, None,
        training.market_closes(dates.min().date(), dates.max().date(), market),
    )  # fmt: skip
    t = lap("student", t)
    validation = validate_candidate(
        candidate, bars, benchmark, label, student, training.reward_config,
        evaluation.config, training.settings.walk_forward_folds,
    )  # fmt: skip
    t = lap("validation", t)
    # the gate asset reads stat_tests.json as outputs.write_json wrote it
    tests = json.loads(json.dumps(statistical_tests(validation), allow_nan=False, default=str))
    decision = decide(tests, None, evaluation.thresholds).to_dict()
    lap("tests_and_gate", t)
    return {
        "gate_version": GATE_VERSION,
        "protocol": PROTOCOL_VERSION,
        "ic": canonical_ic(ic),
        "seed": seed,
        "n_symbols": len(symbols),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "recommendation": decision["recommendation"],
        "rules": [{k: v for k, v in rule.items() if k != "detail"} for rule in decision["rules"]],
        "figures": {
            "student_rank_ic": _dig(tests, "skill", "rank_ic", "mean"),
            "planted_rank_ic": planted,
            **_baseline_figures(tests),
            "sessions": tests.get("sessions"),
            "oos_samples": _dig(validation.summary, "out_of_sample", "samples"),
            "teachers": outcome.summary["teachers"]["completed"],
            "windows": len(labels),
            "seconds": round(time.perf_counter() - started, 1),
            "stage_seconds": seconds,
        },
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _universe(
    training: Training, seed: int, ic: float, n_symbols: int, start: dt.date, end: dt.date
) -> tuple[list[str], pd.DataFrame, pd.DataFrame, float | None]:
    """A synthetic universe's symbols, bars and benchmark, and the rank IC its planted
    observable itself scored there (the signal there was to find; None without equities)."""
    universe = training.universe
    source = SyntheticSource(universe, training.calendar, seed=seed, signal_ic=ic)
    symbols = universe_symbols(universe, n_symbols)
    bars, benchmark = universe_bars(source, symbols, start, end)
    equities = [s for s in symbols if universe.get(s).kind == "equity"]
    planted = signal_ics(source, equities, start, end)["planted_signal"] if equities else None
    return symbols, bars, benchmark, planted


def _baseline_figures(tests: Mapping[str, Any]) -> dict[str, Any]:
    """The best simple baseline on the student's rows (issue 14's "at least the best
    baseline" goal): its name and rank IC, and the student's mean daily lead over it."""
    best = _dig(tests, "skill", "baselines", "best")
    return {
        "best_baseline": best,
        "best_baseline_rank_ic": None
        if best is None
        else _dig(tests, "skill", "baselines", "rank_ic", best, "mean"),
        "student_minus_best": _dig(tests, "skill", "baselines", "student_minus_best", "mean"),
    }


def _dig(payload: Mapping[str, Any], *path: str) -> Any:
    """``payload[a][b]…``, or None where a level is missing (the tests are being extended)."""
    value: Any = payload
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def canonical_ic(ic: float) -> float:
    """ICs as keys: 0.05 typed on a command line and 0.05 computed compare equal."""
    return round(float(ic), 6)


def result_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(canonical_ic(record[f]) if f == "ic" else record[f] for f in KEY_FIELDS)


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every finished universe in the log.

    A last line without its newline is a write that was cut off (the process killed in the
    middle of an append): it is ignored with a warning. Any other unreadable line means the
    log was damaged some other way, and is an error.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # after the last newline: an unfinished append
                warnings.warn(
                    f"{path}: ignoring the unfinished last line ({len(line)} bytes)", stacklevel=2
                )
                continue
            raise ValueError(f"{path}:{number} is not a JSON record") from None
    return records


def append_result(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record as one line, durably; a cut-off line left by a kill is dropped first,
    so the new line starts on a line of its own."""
    path = Path(path)
    if path.exists() and path.stat().st_size:
        raw = path.read_bytes()
        if not raw.endswith(b"\n"):
            keep = raw.rfind(b"\n") + 1
            warnings.warn(
                f"{path}: dropping an unfinished last line ({len(raw) - keep} bytes)",
                stacklevel=2,
            )
            os.truncate(path, keep)
            fsync_path(path)
    line = json.dumps(dict(record), sort_keys=True, allow_nan=False) + "\n"
    append_durable(path, line.encode())


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided interval of a binomial proportion k/n."""
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 ≤ k ≤ n and n ≥ 1, got k={k}, n={n}")
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return low, high


def summarize(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One cell per (gate version, protocol, IC, scale): approvals k/n with their interval."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for record in records:
        key = tuple(canonical_ic(record[f]) if f == "ic" else record[f] for f in CELL_FIELDS)
        groups.setdefault(key, []).append(record)
    cells = []
    for key in sorted(groups):
        rows = groups[key]
        n = len(rows)
        counts = {r: sum(x["recommendation"] == r for x in rows)
                  for r in ("approve", "needs_review", "reject")}  # fmt: skip
        low, high = clopper_pearson(counts["approve"], n)
        failed: dict[str, int] = {}
        for row in rows:
            for rule in row["rules"]:
                if not rule["passed"]:
                    failed[rule["name"]] = failed.get(rule["name"], 0) + 1
        cells.append(
            {
                **dict(zip(CELL_FIELDS, key, strict=True)),
                "universes": n,
                "approved": counts["approve"],
                "needs_review": counts["needs_review"],
                "rejected": counts["reject"],
                "approval_rate": counts["approve"] / n,
                "interval": [low, high],
                "rule_failures": dict(sorted(failed.items())),
                "oos_sessions": _median(r["figures"].get("sessions") for r in rows),
                "student_rank_ic": _median(r["figures"].get("student_rank_ic") for r in rows),
                "planted_rank_ic": _median(r["figures"].get("planted_rank_ic") for r in rows),
                **_baseline_summary(rows),
                "seconds_per_universe": _median(r["figures"].get("seconds") for r in rows),
            }
        )
    return cells


def _baseline_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How often the student's rank IC was at least the best baseline's (universes recorded
    before the baselines were, left out), and the median lead."""
    leads = [r["figures"]["student_minus_best"] for r in rows
             if r["figures"].get("student_minus_best") is not None]  # fmt: skip
    return {
        "baseline_universes": len(leads),
        "student_at_least_best": sum(lead >= 0 for lead in leads),
        "student_minus_best": _median(leads),
    }


def _median(values: Iterable[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def packaged_payload(cells: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What ``operating_characteristics.json`` holds: the current gate's and protocol's cells."""
    current = [
        dict(c) for c in cells
        if c["gate_version"] == GATE_VERSION and c["protocol"] == PROTOCOL_VERSION
    ]  # fmt: skip
    return {
        "gate_version": GATE_VERSION,
        "protocol": PROTOCOL_VERSION,
        "confidence": CONFIDENCE,
        "interval": "Clopper-Pearson, two-sided",
        "source": "bench/bench_calibration.py (bench/results/calibration.jsonl)",
        "cells": current,
    }


def operating_characteristics(
    n_symbols: int, oos_sessions: int, payload: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The current gate's measured false-promotion bound and power, for the briefing.

    For the null (IC 0) and each planted IC, the cell of the measured scale nearest to
    ``n_symbols`` × ``oos_sessions`` (distance on a log scale, both axes), with that scale
    stated. ``payload`` defaults to the packaged file. None when nothing was measured for this
    gate version (the briefing then says so).
    """
    if payload is None:
        source = resources.files("sensequant_assets.evaluation").joinpath(PACKAGED_FILE)
        if not source.is_file():
            return None
        payload = json.loads(source.read_text())
    cells = [
        c for c in payload.get("cells", [])
        if c.get("gate_version") == GATE_VERSION and c.get("protocol") == PROTOCOL_VERSION
    ]  # fmt: skip
    if not cells:
        return None

    def distance(cell: Mapping[str, Any]) -> float:
        sessions = cell.get("oos_sessions") or 1.0
        return abs(math.log(cell["n_symbols"] / max(n_symbols, 1))) + abs(
            math.log(sessions / max(oos_sessions, 1))
        )

    nearest: dict[float, Mapping[str, Any]] = {}
    for cell in sorted(cells, key=distance):
        nearest.setdefault(canonical_ic(cell["ic"]), cell)

    def entry(cell: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "approved": cell["approved"],
            "universes": cell["universes"],
            "rate": cell["approval_rate"],
            "interval": cell["interval"],
            "scale": {
                "n_symbols": cell["n_symbols"],
                "start": cell["start"],
                "end": cell["end"],
                "oos_sessions": cell.get("oos_sessions"),
            },
        }

    null = nearest.pop(0.0, None)
    return {
        "gate_version": GATE_VERSION,
        "requested_scale": {"n_symbols": n_symbols, "oos_sessions": oos_sessions},
        "confidence": payload.get("confidence", CONFIDENCE),
        "false_promotion": None
        if null is None
        else {**entry(null), "upper_bound": null["interval"][1]},
        "power": {str(ic): entry(cell) for ic, cell in sorted(nearest.items())},
    }
