"""Shared pieces of the live drills (demotion, staging trial): two real students trained on a
synthetic panel, bars written to the files source and extended over live sessions by a rule
that reads the students' calls, and candidates recorded and approved with the evidence the
scorecard and the trial read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import LabelSpec, feature_columns
from sensequant_assets.live.signals import score_day
from sensequant_assets.registry import StateManager
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.training.distillation import student_samples
from sensequant_assets.training.student import StudentConfig, train_student
from sensequant_assets.training.student_files import load_student, save_student
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.bar_files import write_csv
from sensequant_assets_tests.deployable import release_audit
from sensequant_assets_tests.fault_drills import make_dagster_home

CALENDAR = TradingCalendar()
SYMBOLS = ("AXISBANK", "HDFCBANK", "ICICIBANK", "KOTAKBANK", "SBIN",
           "BRITANNIA", "HINDUNILVR", "ITC", "NESTLEIND", "TATACONSUM")  # fmt: skip
START, TRAINED = dt.date(2023, 1, 2), dt.date(2024, 3, 28)
LABEL = LabelSpec(reference="absolute")
BAR_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume"]
Move = Callable[[dict[str, pd.Series]], pd.Series]
"""Next session's log move per symbol from each model's score ranks (0..1) of the session."""


def training_panel(seed: int = 9, end: dt.date = TRAINED) -> pd.DataFrame:
    """Synthetic bars of :data:`SYMBOLS` from :data:`START` to ``end``."""
    source = SyntheticSource(load_universe(), CALENDAR, seed=seed)
    base = pd.concat(
        [source.fetch(s, START, end).assign(symbol=s) for s in SYMBOLS], ignore_index=True
    )
    base["date"] = pd.to_datetime(base["date"])
    return base


def train(bars: pd.DataFrame, directory: Path, rounds: int) -> None:
    samples = student_samples(bars, LABEL)
    config = StudentConfig(lgbm_params={"num_iterations": rounds})
    save_student(train_student(samples, None, list(feature_columns()), config), directory)


def promised_walk_forward(
    audit: Path, sessions: list[dt.date], symbols: tuple[str, ...] = SYMBOLS
) -> None:
    """Out-of-sample rows as a validation writes them: a score that ranked well."""
    rng = np.random.default_rng(5)
    rows = []
    for day in sessions:
        future = rng.normal(0, 0.02, len(symbols))
        score = future + rng.normal(0, 0.05, len(symbols))  # a daily rank IC near 0.35
        for symbol, ret, s in zip(symbols, future, score, strict=True):
            p_up = 0.4 + s
            rows.append((pd.Timestamp(day), symbol, int(ret > 0) * 2, ret, 2 if s > 0 else 0,
                         0.6 - p_up, 0.4, p_up))  # fmt: skip
    columns = ["date", "symbol", "label", "forward_return", "predicted", "p_down", "p_neutral",
               "p_up"]  # fmt: skip
    pd.DataFrame(rows, columns=columns).to_parquet(audit / "oos_predictions.parquet")


def extend(
    bars: pd.DataFrame,
    models: dict[str, Path],
    live: list[dt.date],
    move: Move,
    continuation: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``bars`` extended over ``live``: each session moves by ``move`` of the models' score
    ranks on the session before (scored from the bars so far, as the live assets do).

    Without ``continuation`` a session's bar is flat around the moved close; with it (the same
    market's own bars for ``live``) the market's bars are tilted by the accumulated moves, so
    the features keep the law the models were trained on."""
    loaded = {run_id: load_student(directory) for run_id, directory in models.items()}
    frames, history = [bars], bars
    last = bars[bars["date"] == bars["date"].max()].set_index("symbol")["close"]
    tilt = pd.Series(1.0, index=list(SYMBOLS))
    for day in live:
        previous = CALENDAR.offset(day, -1)
        ranks = {
            run_id: score_day(booster, metadata, run_id, history, previous, SYMBOLS)
            .signals.set_index("symbol")["score"].rank(pct=True).reindex(list(SYMBOLS))
            for run_id, (booster, metadata) in loaded.items()
        }  # fmt: skip
        step = np.exp(move(ranks))
        if continuation is None:
            close = last * step
            new = pd.DataFrame({"date": pd.Timestamp(day), "symbol": list(SYMBOLS),
                                "open": close.to_numpy(), "high": close.to_numpy() * 1.01,
                                "low": close.to_numpy() * 0.99, "close": close.to_numpy(),
                                "volume": 100_000})  # fmt: skip
            last = close
        else:
            tilt = tilt * step
            today = continuation[continuation["date"] == pd.Timestamp(day)].set_index("symbol")
            today = today.reindex(list(SYMBOLS))
            prices = today[["open", "high", "low", "close"]].mul(tilt, axis=0)
            new = prices.assign(volume=today["volume"]).rename_axis("symbol").reset_index()
            new = new.assign(date=pd.Timestamp(day))[BAR_COLUMNS]
        history = pd.concat([history, new], ignore_index=True)
        frames.append(new)
    return pd.concat(frames, ignore_index=True)


def write_files(bars: pd.DataFrame, directory: Path) -> None:
    for symbol, rows in bars.groupby("symbol"):
        frame = rows.drop(columns="symbol").rename(columns=str.capitalize)
        write_csv(directory, symbol, frame.assign(Date=frame["Date"].dt.date.astype(str)))


def drill_env(tmp_path: Path, files: Path) -> dict[str, str]:
    """The drill's settings: bars from ``files``, an instance on the repo's ``dagster.yaml``."""
    dagster_home = make_dagster_home(tmp_path / "dagster_home")
    return {
        "DAGSTER_HOME": str(dagster_home), "SENSEQUANT_DATA_SOURCE": "files",
        "SENSEQUANT_FILES_DIR": str(files), "SENSEQUANT_SYMBOLS": ",".join(SYMBOLS),
        "SENSEQUANT_HISTORY_START": START.isoformat(), "SENSEQUANT_LABEL_REFERENCE": "absolute",
    }  # fmt: skip


def ingest_args(last: dt.date) -> list[str]:
    return ["ingest", "--symbols", ",".join(SYMBOLS), "--start-date", START.isoformat(),
            "--end-date", last.isoformat(), "--no-benchmark"]  # fmt: skip


def approve(layout: ArtifactLayout, registry: StateManager, run_id: str) -> None:
    """``run_id`` recorded (trained to :data:`TRAINED` on files) and approved, with a
    walk-forward, a briefing and a manifest in its audit directory."""
    audit = layout.audit_dir(layout.candidate(run_id))
    audit.mkdir(parents=True)
    promised_walk_forward(audit, CALENDAR.sessions(dt.date(2023, 9, 1), TRAINED))
    (audit / "promotion_briefing.md").write_text(f"# {run_id}\n")
    (audit / "promotion_briefing.json").write_text("{}\n")
    release_audit(layout, run_id)
    registry.record_candidate_run(
        run_id, audit_dir=audit, recommendation="approve", score=0.9, data_source="files",
        start_date=START, end_date=TRAINED,
    )  # fmt: skip
    registry.approve_candidate_run(run_id, approved_by="asha")
