"""The training stages give the same outputs on Dask worker processes as in-process.

Both variants start from one copy of the same ingested warehouse and run the same two jobs
(``teacher_model_job`` over 2 symbols x 2 windows, then ``candidate_job``) with
``dagster job execute`` on a persistent instance of their own, the way a launched run executes:
only ``SENSEQUANT_EXECUTOR`` differs. The Dask variant trains the teachers on the LocalCluster
the executor starts for the run and the candidate on a cluster this test started and names by
address (``SENSEQUANT_DASK_SCHEDULER``), so both cluster settings are exercised.
"""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.executors import DISTRIBUTED_EXTRA, dask_cluster_config
from sensequant_assets.defs.jobs import BENCHMARK_JOB, CANDIDATE_JOB, OHLCV_JOB, TEACHER_JOB
from sensequant_assets.defs.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    date_range_tags,
    one_symbol_range_tags,
)
from sensequant_assets.defs.tags import scope_tags
from sensequant_assets.registry import StateManager
from sensequant_assets.settings import SettingsError, load_settings
from sensequant_assets_tests.services import process_states, wait_for_no_process_mentioning

SYMBOLS = ("INFY", "TCS")
WINDOWS = ("2024-03-13_to_2024-09-08", "2024-04-12_to_2024-10-08")
START, END = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
CANDIDATE = "live_candidate_20250101_000000"
DAGSTER = str(Path(sys.executable).parent / "dagster")
# When, how long and by which run a file was written: provenance, not a result.
PROVENANCE_KEYS = frozenset(
    {"trained_at", "duration_seconds", "created_at", "generated_at", "dagster_run_id"}
)
# Settings recorded in the manifest that differ between the variants by construction.
VARIANT_SETTINGS = frozenset({"home", "executor", "dask_scheduler"})


@dataclass
class Variant:
    """One home and one Dagster instance that the two training jobs run in."""

    root: Path
    executor_env: dict[str, dict[str, str]]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    def env(self, job: str) -> dict[str, str]:
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.dagster_home),
            "SENSEQUANT_HOME": str(self.home),
            "SENSEQUANT_SYMBOLS": ",".join(SYMBOLS),
            # stat_tests and stress_tests both follow model_validation: two steps at once
            "SENSEQUANT_RUN_STRESS_TESTS": "true",
            **self.executor_env[job],
        }

    def run(self, job: str, tags: dict[str, str]) -> None:
        started = time.perf_counter()
        completed = subprocess.run(
            [DAGSTER, "job", "execute", "-m", "sensequant_assets.definitions", "-j", job,
             "--tags", json.dumps(tags)],
            env=self.env(job), capture_output=True, text=True, timeout=420,
        )  # fmt: skip
        self.seconds[job] = time.perf_counter() - started
        assert completed.returncode == 0, completed.stderr[-4000:]


def _ingest() -> Path:
    """OHLCV for the symbols and the NIFTY 50 over 2024 into the test's own home."""
    settings = load_settings()
    defs = build_defs(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        for symbol in SYMBOLS:
            tags = one_symbol_range_tags(symbol, START, END)
            job = defs.resolve_job_def(OHLCV_JOB)
            assert job.execute_in_process(instance=instance, tags=tags).success
        job = defs.resolve_job_def(BENCHMARK_JOB)
        assert job.execute_in_process(instance=instance, tags=date_range_tags(START, END)).success
    return settings.data_dir


def _prepare(variant: Variant, data: Path) -> None:
    shutil.copytree(data, variant.home / "data")
    variant.dagster_home.mkdir(parents=True)
    (variant.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")


def _train(variant: Variant) -> None:
    variant.run(
        TEACHER_JOB,
        {
            RANGE_START_TAG: f"{SYMBOLS[0]}|{WINDOWS[0]}",
            RANGE_END_TAG: f"{SYMBOLS[-1]}|{WINDOWS[-1]}",
        },
    )
    variant.run(CANDIDATE_JOB, scope_tags(CANDIDATE, list(SYMBOLS), START, END))


def _drop_provenance(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_provenance(v) for k, v in value.items() if k not in PROVENANCE_KEYS}
    if isinstance(value, list):
        return [_drop_provenance(v) for v in value]
    return value


def _result_of(path: Path) -> Any:
    """A written file reduced to its results: bytes, or a document without provenance."""
    if path.suffix == ".json":
        return _drop_provenance(json.loads(path.read_text()))
    if path.name == "manifest.yaml":
        manifest = yaml.safe_load(path.read_text())
        manifest["configuration"] = {
            k: v for k, v in manifest["configuration"].items() if k not in VARIANT_SETTINGS
        }
        # JSON checksums cover provenance fields; those files are compared above without them
        manifest["artifacts"] = {
            k: v for k, v in manifest["artifacts"].items() if not k.endswith(".json")
        }
        return _drop_provenance(manifest)
    if path.name == "promotion_briefing.md":
        return [line for line in path.read_text().splitlines() if "Dagster run" not in line]
    return path.read_bytes()


def _outputs(home: Path) -> dict[str, Any]:
    """Every model, prediction, report and record the training stages wrote."""
    files = [*(home / "data" / "models").rglob("*"), *(home / "release").rglob("*")]
    return {
        path.relative_to(home).as_posix(): _result_of(path)
        for path in sorted(files)
        if path.is_file() and "progress" not in path.parts
    }


def _metadata_value(value: Any, home: Path) -> Any:
    value = getattr(value, "value", value)
    return value.replace(str(home), "<home>") if isinstance(value, str) else value


@dataclass
class Recorded:
    """What a variant's instance holds about its two runs."""

    materializations: dict[tuple[str, str | None], dict[str, Any]]
    checks: dict[str, bool]
    run_pids: dict[str, int]
    step_pids: dict[str, set[int]]
    run_seconds: dict[str, float]


def _recorded(variant: Variant) -> Recorded:
    with dg.DagsterInstance.from_config(str(variant.dagster_home)) as instance:
        materializations = {}
        for key in instance.get_asset_keys():
            records = instance.fetch_materializations(dg.AssetRecordsFilter(key), limit=100)
            for record in records.records:
                event = record.asset_materialization
                assert event is not None
                where = (key.to_user_string(), event.partition)
                assert where not in materializations, f"{where} materialized twice"
                materializations[where] = {
                    name: _metadata_value(value, variant.home)
                    for name, value in event.metadata.items()
                }
        runs = instance.get_runs()
        assert {run.job_name for run in runs} == {TEACHER_JOB, CANDIDATE_JOB} and len(runs) == 2
        checks, run_pids, step_pids, run_seconds = {}, {}, {}, {}
        for run in runs:
            assert run.status == dg.DagsterRunStatus.SUCCESS
            events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
            kinds = {e.event_type for e in events}
            assert dg.DagsterEventType.RUN_SUCCESS in kinds
            (start,) = [e for e in events if e.event_type == dg.DagsterEventType.RUN_START]
            run_pids[run.job_name] = start.pid
            step_pids[run.job_name] = {
                e.pid for e in events if e.event_type == dg.DagsterEventType.STEP_START
            }
            for e in events:
                if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                    evaluation = e.asset_check_evaluation_data
                    checks[evaluation.asset_check_key.name] = evaluation.passed
            stats = instance.get_run_stats(run.run_id)
            run_seconds[run.job_name] = stats.end_time - stats.start_time
    return Recorded(materializations, checks, run_pids, step_pids, run_seconds)


@pytest.fixture
def no_process_left_behind(tmp_path: Path) -> Iterator[set[int]]:
    """Torn down last: no process may outlive the test, neither one naming its files (Dagster's
    ``tail -F`` log capture and its orphan watcher) nor a pid the test adds (Dask workers)."""
    watched: set[int] = set()
    yield watched
    left = wait_for_no_process_mentioning(str(tmp_path))
    alive = {p for p, (_, state) in process_states().items() if p in watched and state != "Z"}
    assert (left, alive) == ({}, set()), f"processes left behind: {left or alive}"


@pytest.fixture
def dask_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """An already running 2-process cluster; its workers inherit the Dask variant's settings."""
    from dask.distributed import Client, LocalCluster

    dask_home = tmp_path / "dask" / "home"
    monkeypatch.setenv("SENSEQUANT_HOME", str(dask_home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dask" / "dagster_home"))
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", ",".join(SYMBOLS))
    monkeypatch.setenv("SENSEQUANT_RUN_STRESS_TESTS", "true")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.mark.slow
def test_dask_training_matches_in_process(
    no_process_left_behind: set[int],
    isolated_env: Path,
    tmp_path: Path,
    dask_cluster: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENSEQUANT_HOME", str(isolated_env))
    data = _ingest()
    in_process = Variant(
        tmp_path / "in_process",
        {job: {"SENSEQUANT_EXECUTOR": "in_process"} for job in (TEACHER_JOB, CANDIDATE_JOB)},
    )
    address = dask_cluster.scheduler.address
    dask = Variant(
        tmp_path / "dask",
        {
            TEACHER_JOB: {"SENSEQUANT_EXECUTOR": "dask", "SENSEQUANT_DASK_WORKERS": "2"},
            CANDIDATE_JOB: {"SENSEQUANT_EXECUTOR": "dask", "SENSEQUANT_DASK_SCHEDULER": address},
        },
    )
    for variant in (in_process, dask):
        _prepare(variant, data)
        _train(variant)

    expected, actual = _recorded(in_process), _recorded(dask)
    teachers = {(f"{s}|{w}") for s in SYMBOLS for w in WINDOWS}
    assert {p for (key, p) in expected.materializations if key == "teacher_model"} == teachers
    assert {key for key, _ in expected.materializations} >= {"student_model", "stress_tests"}
    assert actual.materializations == expected.materializations
    assert actual.checks == expected.checks and all(expected.checks.values())

    files = _outputs(in_process.home)
    assert f"data/models/{CANDIDATE}/student/student_model.txt" in files
    assert f"release/audit_{CANDIDATE}/oos_predictions.parquet" in files
    assert len([f for f in files if f.startswith("data/models/teachers/")]) == 2 * len(teachers)
    assert _outputs(dask.home) == files
    statuses = {
        StateManager(ArtifactLayout(v.home).registry).get_candidate_run(CANDIDATE).status
        for v in (in_process, dask)
    }
    assert len(statuses) == 1

    # In-process, every step runs in the run's own process; on Dask none does.
    for job in (TEACHER_JOB, CANDIDATE_JOB):
        assert expected.step_pids[job] == {expected.run_pids[job]}
        assert actual.step_pids[job].isdisjoint({actual.run_pids[job], os.getpid()})
    workers = set(dask_cluster.run(os.getpid).values())
    no_process_left_behind.update(workers)
    assert actual.step_pids[CANDIDATE_JOB] <= workers

    print("\nwall seconds (dagster job execute / run start to end):")
    for job in (TEACHER_JOB, CANDIDATE_JOB):
        print(
            f"  {job:<18} in-process {in_process.seconds[job]:5.1f} / "
            f"{expected.run_seconds[job]:5.1f}   dask {dask.seconds[job]:5.1f} / "
            f"{actual.run_seconds[job]:5.1f}   dask step processes {len(actual.step_pids[job])}"
        )


def test_dask_setting_maps_to_a_local_or_an_existing_cluster() -> None:
    local = load_settings(executor="dask", dask_workers=3)
    assert dask_cluster_config(local) == {
        "local": {"n_workers": 3, "processes": True, "dashboard_address": None}
    }
    existing = load_settings(executor="dask", dask_scheduler="tcp://10.0.0.5:8786")
    assert dask_cluster_config(existing) == {"existing": {"address": "tcp://10.0.0.5:8786"}}
    defs = build_defs(existing)
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(TEACHER_JOB).executor_def.name == "dask"


def test_executor_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    dagsters = dg.Definitions(assets=[dg.AssetSpec("a")], jobs=[dg.define_asset_job("j")])
    default = build_defs(load_settings()).resolve_job_def(TEACHER_JOB).executor_def
    assert default is dagsters.resolve_job_def("j").executor_def  # multiprocess, as before
    monkeypatch.setenv("SENSEQUANT_EXECUTOR", "in_process")
    chosen = build_defs(load_settings()).resolve_job_def(TEACHER_JOB).executor_def
    assert chosen is dg.in_process_executor
    monkeypatch.setenv("SENSEQUANT_EXECUTOR", "k8s")  # deploy/k8s/configmap.yaml
    defs = build_defs(load_settings())
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(TEACHER_JOB).executor_def.name == "k8s"


def test_scheduler_without_the_dask_executor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_DASK_SCHEDULER", "tcp://10.0.0.5:8786")
    with pytest.raises(SettingsError, match="set SENSEQUANT_EXECUTOR=dask"):
        load_settings()


def test_missing_dask_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dagster_dask", None)  # what an absent package raises
    with pytest.raises(SettingsError, match="SENSEQUANT_EXECUTOR=dask needs dagster-dask") as info:
        build_defs(load_settings(executor="dask"))
    assert DISTRIBUTED_EXTRA in str(info.value)
