"""Fault drills: the mechanics shared by ``test_fault_drills.py`` and ``bench/drill_faults.py``.

Every drill injects one real fault into real work: a SIGKILL to a ``sensequant ingest`` process
group on a persistent Dagster instance, a flaky fake Breeze server behind the real SDK, flipped
bytes in a model file, a file-size limit the kernel enforces (``RLIMIT_FSIZE``: a write past it
fails with ``EFBIG``, the way a full disk fails with ``ENOSPC``). Nothing of the project is
mocked; these helpers only start processes, inject the fault and read back what happened from
the instance, the DuckDB file, the registry and the file system.

Run as ``python -m sensequant_assets_tests.fault_drills worker`` it is the disk-full worker:
a process that runs Dagster jobs on request under a given file-size limit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import sqlalchemy.exc
import yaml

REPO = Path(__file__).resolve().parents[1]
SENSEQUANT = Path(sys.executable).parent / "sensequant"
OHLCV = dg.AssetKey("ohlcv_daily")
BREEZE_POOL = "breeze_api"
PILOT_SYMBOLS = ("RELIANCE", "TCS")
PILOT_DATES = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
# Everything the candidate job runs before the release step, and the release step itself.
PRE_RELEASE = ("student_model", "model_validation", "stat_tests", "promotion_gate")
RELEASE = ("release_audit", "promotion_briefing")
_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
_POLL_ERRORS = (sqlalchemy.exc.OperationalError, sqlite3.OperationalError)


# --- environments and instances ------------------------------------------------------------


def child_env(home: Path, dagster_home: Path | None = None, **extra: str) -> dict[str, str]:
    """An explicit environment for a subprocess: nothing leaks in from the caller's shell."""
    env = {name: os.environ[name] for name in _PASSTHROUGH if name in os.environ}
    env |= {"SENSEQUANT_HOME": str(home), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if dagster_home is not None:
        env["DAGSTER_HOME"] = str(dagster_home)
    return env | extra


def make_dagster_home(path: Path) -> Path:
    """A persistent instance configured like production: a copy of the repo's ``dagster.yaml``."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", path / "dagster.yaml")
    return path


def partition_keys(symbols: Iterable[str], sessions: Iterable[dt.date]) -> set[str]:
    """``ohlcv_daily`` multi-partition keys (``date|symbol``) for every symbol × session."""
    days = list(sessions)
    return {f"{day.isoformat()}|{symbol}" for symbol in symbols for day in days}


def run_symbol(run: dg.DagsterRun) -> str:
    """The symbol of a one-symbol range run (``sensequant ingest`` makes one per symbol)."""
    from sensequant_assets.defs.partitions import RANGE_START_TAG

    return run.tags[RANGE_START_TAG].split("|")[1]


# --- drill 1: kill a backfill --------------------------------------------------------------


def ingest_command(symbols: Sequence[str], start: dt.date, end: dt.date) -> list[str]:
    """The backfill an operator runs from a shell or cron: one Dagster run per symbol."""
    return [
        str(SENSEQUANT),
        "ingest",
        "--symbols",
        ",".join(symbols),
        "--start-date",
        start.isoformat(),
        "--end-date",
        end.isoformat(),
        "--no-benchmark",
    ]


def start_ingest(command: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``sensequant ingest`` in its own process group, so one signal reaches all of it."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, env=dict(env), cwd=env["SENSEQUANT_HOME"], stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def kill_mid_run(
    proc: subprocess.Popen[bytes],
    instance: dg.DagsterInstance,
    after: dg.DagsterEventType = dg.DagsterEventType.ASSET_MATERIALIZATION,
    min_finished: int = 1,
    timeout: float = 180.0,
) -> str:
    """SIGKILL the process group while a run is in progress; returns that run's id.

    The trigger is a STARTED run that has logged ``after`` once at least ``min_finished`` runs
    succeeded, so the kill lands inside a later run of the backfill, not between two runs.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the ingest exited ({proc.returncode}) before the kill")
        try:
            victim = _run_in_progress(instance, after, min_finished)
        except _POLL_ERRORS:
            victim = None  # the writer held the SQLite lock for a moment
        if victim is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return victim
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise AssertionError(f"no run reached {after} within {timeout:.0f} s")


def _run_in_progress(
    instance: dg.DagsterInstance, after: dg.DagsterEventType, min_finished: int
) -> str | None:
    finished = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
    if len(finished) < min_finished:
        return None
    started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    for run in started:
        if instance.get_records_for_run(run.run_id, of_type=after, limit=1).records:
            return run.run_id
    return None


def stuck_partitions(instance: dg.DagsterInstance) -> dict[str, str]:
    """Partitions a run planned but never recorded as materialized: partition → run id.

    Dagit shows them "in progress" while that run is STARTED and "failed" once it has ended,
    which decides whether a "failed and missing" backfill picks them up.
    """
    attempts = instance.event_log_storage.get_latest_asset_partition_materialization_attempts_without_materializations(  # noqa: E501
        OHLCV
    )
    return {partition: run_id for partition, (run_id, _) in attempts.items()}


def run_monitoring_pass(
    dagster_home: Path, run_id: str, max_runtime_seconds: int | None = None
) -> dg.DagsterRunStatus:
    """One pass of the daemon's run monitoring over ``run_id``; returns the run's status after.

    This is the function ``dagster-daemon`` calls for every STARTED run. With
    ``max_runtime_seconds`` the instance's ``dagster.yaml`` gets that limit first.
    """
    import logging

    from dagster._daemon.monitoring.run_monitoring import monitor_started_run

    if max_runtime_seconds is not None:
        config_path = dagster_home / "dagster.yaml"
        config = yaml.safe_load(config_path.read_text()) or {}
        config.setdefault("run_monitoring", {})["max_runtime_seconds"] = max_runtime_seconds
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        record = instance.get_run_record_by_id(run_id)
        assert record is not None
        if max_runtime_seconds is not None and record.start_time is not None:
            time.sleep(max(0.0, record.start_time + max_runtime_seconds + 0.5 - time.time()))
        if record.dagster_run.status == dg.DagsterRunStatus.STARTED:
            monitor_started_run(instance, None, record, logging.getLogger("run_monitoring"))  # type: ignore[arg-type]
        run = instance.get_run_by_id(run_id)
        assert run is not None
        return run.status


def warehouse_counts(duckdb_path: Path, table: str = "ohlcv_daily") -> Counter[str]:
    """How many rows the warehouse holds per ``date|symbol`` key (1 each, when all is well).

    Opened read-write on purpose: after a SIGKILL the file may carry a WAL to replay.
    """
    if not duckdb_path.exists():
        return Counter()
    with duckdb.connect(str(duckdb_path)) as con:
        rows = con.execute(
            f"select strftime(date, '%Y-%m-%d') || '|' || symbol, count(*) "
            f"from market.{table} group by all"
        ).fetchall()
    return Counter({key: count for key, count in rows})


@dataclass(frozen=True)
class Exactness:
    """Warehouse rows compared with the requested partitions."""

    missing: int
    duplicated: int
    unexpected: int

    @classmethod
    def of(cls, counts: Counter[str], requested: set[str]) -> Exactness:
        return cls(
            missing=sum(1 for key in requested if counts[key] == 0),
            duplicated=sum(count - 1 for key, count in counts.items() if count > 1),
            unexpected=sum(1 for key in counts if key not in requested),
        )


# --- drill 2: intermittent Breeze failures --------------------------------------------------


def breeze_env(base_url: str, key: str, secret: str, token: str, retries: int) -> dict[str, str]:
    """Settings that point the real SDK at a fake server, with a short backoff."""
    return {
        "SENSEQUANT_DATA_SOURCE": "breeze",
        "BREEZE_API_KEY": key,
        "BREEZE_API_SECRET": secret,
        "BREEZE_SESSION_TOKEN": token,
        "BREEZE_BASE_URL": base_url,
        "SENSEQUANT_BREEZE_MAX_RETRIES": str(retries),
        "SENSEQUANT_BREEZE_BACKOFF_SECONDS": "0.05",
    }


def ledger_calls(data_dir: Path) -> Counter[str]:
    """Calls the shared call ledger granted, by label (``breeze:<SYMBOL>``, ``breeze:session``)."""
    path = data_dir / "breeze_calls.sqlite"
    if not path.exists():
        return Counter()
    with sqlite3.connect(path) as con:
        return Counter(dict(con.execute("select label, count(*) from calls group by label")))


def failed_run_errors(instance: dg.DagsterInstance) -> dict[str, str]:
    """Symbol → step-failure message of every failed one-symbol ingest run."""
    from sensequant_assets.orchestration.runs import step_failure

    errors = {}
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
        records = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE
        ).records
        events = [r.event_log_entry.dagster_event for r in records]
        errors[run_symbol(run)] = "\n".join(step_failure(e)[1] for e in events if e is not None)
    return errors


# --- drills 3 and 4: candidates, corruption, full disks -------------------------------------


@dataclass(frozen=True)
class Candidates:
    """A released candidate (``released``) and one trained and gated but not yet released."""

    released: str
    unreleased: str
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date

    def scope(self, candidate_id: str) -> dict[str, str]:
        from sensequant_assets.defs.tags import scope_tags

        return scope_tags(candidate_id, self.symbols, self.start, self.end)


FILES_DIR = "files"
DRILL_OVERRIDE = "fault drill: it tests deployment mechanics, not the model"


def files_env(home: Path) -> dict[str, str]:
    """The files source over ``home/files``, where :func:`export_bars` put the drills' data.

    Candidates trained on the synthetic source never reach production; the drills' candidates
    are trained on CSV files exported from it, so the pipeline records them as file data.
    """
    return {"SENSEQUANT_DATA_SOURCE": "files", "SENSEQUANT_FILES_DIR": str(home / FILES_DIR)}


def export_bars(
    home: Path,
    symbols: Sequence[str] = PILOT_SYMBOLS,
    start: dt.date = PILOT_DATES[0],
    end: dt.date = PILOT_DATES[1],
) -> dict[str, str]:
    """Synthetic bars of ``symbols`` and the NIFTY 50 as ``home/files/<SYMBOL>.csv``; the
    environment (:func:`files_env`) that makes them the data source."""
    from sensequant_assets.calendar import TradingCalendar
    from sensequant_assets.sources.synthetic import SyntheticSource
    from sensequant_assets.universe import INDEX_SYMBOL, load_universe

    directory = home / FILES_DIR
    directory.mkdir(parents=True, exist_ok=True)
    source = SyntheticSource(load_universe(None), TradingCalendar())
    for symbol in (*symbols, INDEX_SYMBOL):
        source.fetch(symbol, start, end).to_csv(directory / f"{symbol}.csv", index=False)
    return files_env(home)


def approve_for_drill(home: Path, run_id: str, by: str = "drill") -> None:
    """Approve ``run_id`` under ``home``, overriding the gate (the reason recorded) when it did
    not recommend approval: the drills' models are not meant to be good."""
    from sensequant_assets.artifacts import ArtifactLayout
    from sensequant_assets.registry import StateManager
    from sensequant_assets.registry.approval import ApprovalTerms

    registry = StateManager(ArtifactLayout(home).registry)
    run = registry.get_candidate_run(run_id)
    reason = None if run.recommendation == "approve" else DRILL_OVERRIDE
    registry.approve_candidate_run(run_id, by, terms=ApprovalTerms(override_reason=reason))


def build_candidates(
    home: Path,
    symbols: Sequence[str] = PILOT_SYMBOLS,
    start: dt.date = PILOT_DATES[0],
    end: dt.date = PILOT_DATES[1],
) -> Candidates:
    """Two real candidates under ``home``, the cheapest real way.

    The first is a full historical run (ingest, teachers, candidate job, release audit,
    briefing, registry). The second reuses its data and teachers and stops after the promotion
    gate: the state the release step starts from. Needs a clean environment,
    ``SENSEQUANT_HOME=home`` and the environment :func:`export_bars` returns.
    """
    from sensequant_assets.artifacts import ArtifactLayout
    from sensequant_assets.defs import build_defs
    from sensequant_assets.defs.jobs import CANDIDATE_JOB
    from sensequant_assets.orchestration.historical import HistoricalRequest, run_historical
    from sensequant_assets.orchestration.runs import QUIET
    from sensequant_assets.settings import load_settings

    settings = load_settings()
    assert settings.home.resolve() == home.resolve(), "set SENSEQUANT_HOME to home first"
    assert settings.data_source == "files", "export_bars(home) and set its environment first"
    layout = ArtifactLayout(home)
    with dg.DagsterInstance.ephemeral() as instance:
        request = HistoricalRequest(tuple(symbols), start, end)
        outcome = run_historical(request, settings, instance, say=lambda _: None)
        if not outcome.succeeded:
            raise AssertionError(
                f"historical run failed in {outcome.failed_phase}: {outcome.error}"
            )
        while (second := layout.new_candidate_id()) <= outcome.candidate_id:
            time.sleep(0.2)  # candidate ids have one-second resolution
        candidates = Candidates(outcome.candidate_id, second, tuple(symbols), start, end)
        result = (
            build_defs(settings)
            .resolve_job_def(CANDIDATE_JOB)
            .execute_in_process(
                instance=instance,
                tags=candidates.scope(second),
                asset_selection=[dg.AssetKey(k) for k in PRE_RELEASE],
                run_config=QUIET,
            )
        )
        assert result.success
    return candidates


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (hidden temporaries included), by relative path."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def leftovers(*roots: Path) -> list[str]:
    """Temporaries a writer left behind: dot-prefixed (mkstemp/mkdtemp) or ``*.tmp`` names."""
    found = []
    for root in roots:
        if root.exists():
            found += [
                str(path)
                for path in root.rglob("*")
                if path.name.startswith(".") or path.name.endswith(".tmp")
            ]
    return sorted(found)


def flip_bytes(path: Path, count: int = 3) -> tuple[str, str]:
    """Invert ``count`` bytes spread over the middle of ``path`` (size kept): bit rot, or a
    tampered model. Returns the SHA-256 before and after."""
    data = bytearray(path.read_bytes())
    before = hashlib.sha256(data).hexdigest()
    for k in range(count):
        data[len(data) * (k + 1) // (count + 2)] ^= 0xFF
    path.write_bytes(bytes(data))
    return before, hashlib.sha256(data).hexdigest()


def pages_kib(paths: Iterable[Path], page: int = 4096) -> int:
    """KiB that ``paths`` occupy on a file system of ``page``-byte blocks, such as tmpfs."""
    return sum(-(-path.stat().st_size // page) * page for path in paths) // 1024


@contextmanager
def tmpfs(path: Path, kib: int) -> Iterator[Path]:
    """A ``kib``-KiB tmpfs mounted over ``path``: a real file system that fills up (ENOSPC).

    Needs root with CAP_SYS_ADMIN; see ``can_mount_tmpfs``.
    """
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True, capture_output=True)


def can_mount_tmpfs(probe: Path) -> bool:
    probe.mkdir(parents=True, exist_ok=True)
    try:
        with tmpfs(probe, 64):
            return True
    except (OSError, subprocess.CalledProcessError):
        return False


def registry_integrity(path: Path) -> str:
    with sqlite3.connect(path) as con:
        return str(con.execute("pragma integrity_check").fetchone()[0])


class DiskFullWorker:
    """A subprocess that runs Dagster jobs on request, each under its own file-size limit.

    The limit is the kernel's ``RLIMIT_FSIZE``: with ``SIGXFSZ`` ignored, a write that would
    grow any file past it fails with ``OSError(EFBIG)`` after writing what fits, which is how
    a full disk (``ENOSPC``) fails a writer. Only the soft limit is lowered, and only around
    the job, so one worker (one start-up) serves every case; the parent inspects the files
    between cases. It reads market data from ``home``'s exported files (:func:`files_env`).
    """

    def __init__(self, home: Path, **env: str):
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "sensequant_assets_tests.fault_drills", "worker"],
            env=child_env(home, **(files_env(home) | env)), cwd=home, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self._reply() == {"ready": True}

    def run(
        self,
        job: str,
        tags: Mapping[str, str],
        assets: Sequence[str] | None = None,
        fsize_limit: int | None = None,
    ) -> dict[str, Any]:
        """Run ``job`` (optionally only ``assets``).

        Returns ``success``, the failed ``step``, its ``error`` and the innermost ``stack``
        (where the write failed).
        """
        request = {"job": job, "tags": dict(tags), "assets": assets, "fsize_limit": fsize_limit}
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise AssertionError(f"the disk-full worker died ({self._proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)

    def __enter__(self) -> DiskFullWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker() -> None:
    from sensequant_assets.defs import build_defs
    from sensequant_assets.orchestration.runs import QUIET, step_failure
    from sensequant_assets.settings import load_settings

    # Ignored, SIGXFSZ no longer kills the process: the write fails with EFBIG instead.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    defs = build_defs(load_settings())
    with dg.DagsterInstance.ephemeral() as instance:
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            job = defs.resolve_job_def(request["job"])
            selection = [dg.AssetKey(k) for k in request["assets"]] if request["assets"] else None
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            if request["fsize_limit"] is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (request["fsize_limit"], hard))
            try:
                result = job.execute_in_process(
                    instance=instance, tags=request["tags"], asset_selection=selection,
                    run_config=QUIET, raise_on_error=False,
                )  # fmt: skip
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            failure = next((e for e in result.all_events if e.is_step_failure), None)
            step, error = step_failure(failure) if failure else (None, None)
            reply = {"success": result.success, "step": step, "error": error, "stack": ""}
            if failure is not None and failure.step_failure_data is not None:
                cause = failure.step_failure_data.error
                while cause.cause is not None:
                    cause = cause.cause
                reply["stack"] = "".join(cause.stack)
            print(json.dumps(reply), flush=True)


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    _worker()
