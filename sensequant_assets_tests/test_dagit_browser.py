"""Dagit end to end: a real instance filled by the pilot, ``dagster dev``, Chromium and GraphQL.

The other tests drive the definitions in-process; only these prove that what a reviewer opens
(the lineage, the partitions of ``ohlcv_daily``, the candidate's run) actually renders from
an instance the ``sensequant`` command wrote, and that a backfill launched the way Dagit
launches one (GraphQL, executed by the daemon) lands in the warehouse exactly once.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from sensequant_assets.defs.tags import CANDIDATE_TAG
from sensequant_assets.settings import load_settings
from sensequant_assets.storage import Warehouse
from sensequant_assets_tests.webserver import (
    REPO_ROOT,
    DagsterDev,
    clean_env,
    dagster_dev,
    tail,
    venv_command,
)

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Read at import: the autouse `isolated_env` fixture removes SENSEQUANT_* before each test body.
SCREENSHOT_DIR = os.environ.get("SENSEQUANT_SCREENSHOT_DIR")
# Chromium's background services dial out; on a closed network that gets its sockets refused.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed: the Dagit checks need Chromium"
)
VIEWPORT = {"width": 1440, "height": 900}
# Generous: Dagit's first queries compete with the daemon and other jobs for two cores.
UI_TIMEOUT_MS = 30_000
expect.set_options(timeout=UI_TIMEOUT_MS)

PILOT_SYMBOLS = ("RELIANCE", "TCS")
# A full year, as `make run` does: a shorter range leaves no teacher window to train.
PILOT = ["--symbols", ",".join(PILOT_SYMBOLS), "--start-date", "2024-01-01",
         "--end-date", "2024-12-31"]  # fmt: skip
PILOT_LAST_SESSION = "2024-12-31"
GRAPH_ASSETS = (
    "ohlcv_daily",
    "nifty50_benchmark",
    "teacher_model",
    "student_model",
    "model_validation",
    "promotion_gate",
    "promotion_briefing",
)
CANDIDATE_STEPS = (
    "student_model",
    "data_quality",
    "model_validation",
    "stat_tests",
    "promotion_gate",
    "release_audit",
    "promotion_briefing",
)

# Symbols the pilot did not ingest × the first NSE week of July 2024 (no holiday in it).
BACKFILL_SYMBOLS = ("HDFCBANK", "INFY")
BACKFILL_DAYS = tuple(dt.date(2024, 7, day) for day in range(1, 6))
BACKFILL_TIMEOUT_S = 240
OHLCV = dg.AssetKey("ohlcv_daily")

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionKeysNotFoundError { message }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      error { message }
      runs(limit: 20) { runId status }
    }
    ... on PythonError { message }
    ... on BackfillNotFoundError { message }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } }
}
"""
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS"}
BACKFILL_FAILED = {"FAILED", "FAILING", "CANCELED", "CANCELING", "COMPLETED_FAILED"}


@dataclass
class Pilot:
    """The instance the pilot wrote, and the Dagit serving it."""

    server: DagsterDev
    instance: dg.DagsterInstance
    candidate_run_id: str
    candidate_id: str
    sensequant_home: Path


def _run_pilot(env: dict[str, str], cwd: Path, log: Path) -> None:
    """Fill the instance with the project's own command, exactly as a user would."""
    command = [venv_command("sensequant"), "historical-run", *PILOT]
    with log.open("wb") as out:
        completed = subprocess.run(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600
        )
    if completed.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` exited {completed.returncode}:\n{tail(log, 60)}")


def _candidate_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    runs = [run for run in instance.get_runs() if CANDIDATE_TAG in run.tags]
    assert len(runs) == 1, f"expected one run tagged {CANDIDATE_TAG}, got {len(runs)}"
    return runs[0]


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pilot]:
    root = tmp_path_factory.mktemp("dagit")
    dagster_home, sensequant_home = root / "dagster_home", root / "home"
    dagster_home.mkdir()
    sensequant_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = clean_env(
        DAGSTER_HOME=str(dagster_home),
        SENSEQUANT_HOME=str(sensequant_home),
        SENSEQUANT_DATA_SOURCE="synthetic",
    )
    _run_pilot(env, sensequant_home, root / "historical-run.log")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = _candidate_run(instance)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
        with dagster_dev(env, cwd=sensequant_home, log_dir=root) as server:
            # Dagit greets every fresh instance on 127.0.0.1 with a modal over the page.
            server.graphql("mutation { setNuxSeen }")
            yield Pilot(server, instance, run.run_id, run.tags[CANDIDATE_TAG], sensequant_home)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, pilot: Pilot) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, base_url=pilot.server.url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def _screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """Keep the evidence with the test, and in SENSEQUANT_SCREENSHOT_DIR for the docs."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{name} looks empty"
    if SCREENSHOT_DIR:
        target = Path(SCREENSHOT_DIR)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    return path


@needs_chromium
def test_asset_graph_shows_the_pipeline(pilot: Pilot, page: Page, tmp_path: Path) -> None:
    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    graph = page.locator("svg foreignObject")
    expect(graph.get_by_text("market_data", exact=True)).to_be_visible()
    # Room for the graph: fold the navigation and the asset tree before the graph re-fits.
    page.get_by_text("Hide navigation").click()
    page.locator("button").filter(has=page.locator('[aria-label="panel_show_right"]')).click()
    # With several groups Dagit draws each one collapsed; expand them as a user would.
    page.locator('[aria-haspopup="dialog"]').filter(
        has=page.locator('[aria-label="settings"]')
    ).click()
    page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
    page.keyboard.press("Escape")
    for asset in GRAPH_ASSETS:
        expect(graph.get_by_text(asset, exact=True)).to_be_in_viewport()
    page.wait_for_load_state("networkidle")  # node colours come from a later status query
    _screenshot(page, tmp_path, "asset-graph.png")


@needs_chromium
def test_ohlcv_partitions_view_counts_what_the_pilot_stored(
    pilot: Pilot, page: Page, tmp_path: Path
) -> None:
    stored = pilot.instance.get_materialized_partitions(OHLCV)
    key = f"{PILOT_LAST_SESSION}|{PILOT_SYMBOLS[0]}"
    (record,) = pilot.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=OHLCV, asset_partitions=[key]), limit=1
    ).records
    page.goto("/assets/ohlcv_daily?view=partitions")
    expect(page.get_by_text(re.compile(r"^Materialized \(\d+\)$"))).to_have_text(
        f"Materialized ({len(stored)})"
    )
    missing = page.get_by_text(re.compile(r"^Missing \(\d+\)$"))
    total = page.get_by_text("Partitions Selected")
    assert len(stored) + _number(missing.inner_text()) == _number(total.inner_text())
    # Show only what is stored, then open the pilot's last session of its first symbol.
    missing.click()
    expect(total).to_have_text(f"{len(stored)} Partitions Selected")
    for symbol in PILOT_SYMBOLS:
        expect(_label(page, symbol)).to_be_in_viewport()
    _label(page, PILOT_LAST_SESSION).click()
    _label(page, PILOT_SYMBOLS[0]).click()
    expect(_label(page, key)).to_be_in_viewport()
    expect(_label(page, record.run_id[:8])).to_be_in_viewport()
    expect(_label(page, "ohlcv_daily_job")).to_be_in_viewport()
    expect(_label(page, "synthetic")).to_be_in_viewport()
    _screenshot(page, tmp_path, "ohlcv-daily-partitions.png")


@needs_chromium
def test_candidate_run_page_shows_a_successful_candidate(
    pilot: Pilot, page: Page, tmp_path: Path
) -> None:
    page.goto(f"/runs/{pilot.candidate_run_id}")
    header = page.get_by_text(pilot.candidate_run_id[:8], exact=True)
    expect(header).to_be_in_viewport()
    expect(page.get_by_text("Success", exact=True).first).to_be_in_viewport()
    expect(page.get_by_text("candidate_job").first).to_be_in_viewport()
    expect(page.get_by_text(f"Succeeded ({len(CANDIDATE_STEPS)})")).to_be_in_viewport()
    expect(page.get_by_text("Errored (0)")).to_be_in_viewport()
    # The log opens at its tail: the run's end, and the engine's list of the steps it ran.
    expect(page.get_by_text("RUN_SUCCESS")).to_be_in_viewport()
    step_keys = page.get_by_text(re.compile(r"^\['student_model'"))
    expect(step_keys).to_be_in_viewport()
    for step in CANDIDATE_STEPS:
        expect(step_keys).to_contain_text(f"'{step}'")
    # ...and the briefing's materialization, naming the candidate (its last mention).
    expect(page.get_by_text(pilot.candidate_id, exact=True).last).to_be_in_viewport()
    _screenshot(page, tmp_path, "candidate-run.png")


def _label(page: Page, text: str) -> Locator:
    """The element showing ``text``: Dagit's truncating labels render it twice (one to measure)."""
    return page.get_by_text(text, exact=True).first


def _number(text: str) -> int:
    """``Missing (72,336)`` → 72336."""
    return int(re.sub(r"\D", "", text))


def _wait_for_backfill(server: DagsterDev, backfill_id: str) -> dict[str, Any]:
    """Poll like Dagit's backfill page does, failing with everything needed to diagnose."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while True:
        data = server.graphql(BACKFILL_STATUS, {"id": backfill_id})
        backfill = data["partitionBackfillOrError"]
        status = backfill.get("status")
        if status in BACKFILL_DONE:
            return backfill
        if status in BACKFILL_FAILED or status is None or time.monotonic() > deadline:
            pytest.fail(
                f"backfill {backfill_id} ended as {status or backfill} (waited up to "
                f"{BACKFILL_TIMEOUT_S} s); error: {backfill.get('error')}; "
                f"runs: {backfill.get('runs')}; daemons: {data['instance']}\n"
                f"--- server stderr ---\n{server.stderr_tail()}"
            )
        time.sleep(2)


def test_graphql_backfill_materializes_new_partitions_once(pilot: Pilot) -> None:
    keys = sorted(
        f"{day.isoformat()}|{symbol}" for day in BACKFILL_DAYS for symbol in BACKFILL_SYMBOLS
    )
    assert not set(keys) & pilot.instance.get_materialized_partitions(OHLCV), "keys not new"

    launched = pilot.server.graphql(
        LAUNCH_BACKFILL,
        {"params": {"assetSelection": [{"path": OHLCV.path}], "partitionNames": keys,
                    "title": "dagit e2e backfill"}},
    )["launchPartitionBackfill"]  # fmt: skip
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = _wait_for_backfill(pilot.server, launched["backfillId"])
    assert backfill["runs"] and all(run["status"] == "SUCCESS" for run in backfill["runs"])

    backfill_runs = {run["runId"] for run in backfill["runs"]}
    records = pilot.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=OHLCV, asset_partitions=keys), limit=10 * len(keys)
    ).records
    assert sorted(r.partition_key for r in records) == keys, "one materialization per key"
    assert {r.run_id for r in records} <= backfill_runs

    warehouse = Warehouse(load_settings(home=pilot.sensequant_home).duckdb_path)
    rows = warehouse.symbols_bars(
        "ohlcv_daily", list(BACKFILL_SYMBOLS), BACKFILL_DAYS[0], BACKFILL_DAYS[-1]
    )
    stored = sorted(
        f"{pd.Timestamp(day).date().isoformat()}|{symbol}"
        for day, symbol in zip(rows["date"], rows["symbol"], strict=True)
    )
    assert stored == keys, "each (symbol, date) exactly once"
