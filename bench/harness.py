"""Shared set-up for the Dagster benchmarks: a throw-away home, an instance, counters."""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from sensequant_assets.defs import build_defs
from sensequant_assets.settings import Settings, get_settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class Bench:
    home: Path
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance
    runs: list[str] = field(default_factory=list)

    def execute(self, job_name: str, tags: dict[str, str]) -> dg.ExecuteInProcessResult:
        result = self.defs.resolve_job_def(job_name).execute_in_process(
            instance=self.instance, tags=tags, run_config=QUIET, raise_on_error=True
        )
        self.runs.append(result.run_id)
        return result

    def execute_assets(self, keys: list[str]) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            instance=self.instance,
            asset_selection=[dg.AssetKey(k) for k in keys],
            run_config=QUIET,
            raise_on_error=True,
        )
        self.runs.append(result.run_id)
        return result

    def event_count(self, run_ids: list[str] | None = None) -> int:
        return sum(len(self.instance.all_logs(r)) for r in (run_ids or self.runs))


@contextmanager
def bench_home(instance_kind: str = "sqlite", **env: str) -> Iterator[Bench]:
    """A fresh SENSEQUANT_HOME and a Dagster instance: the embedded SQLite one configured by
    the repo's dagster.yaml (default), or ``postgres``: deploy/dagster.yaml on a throw-away
    PostgreSQL cluster on 127.0.0.1."""
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sensequant-bench-")))
        os.environ["SENSEQUANT_HOME"] = str(home)
        os.environ.update(env)
        get_settings.cache_clear()
        settings = load_settings()
        dagster_home = home / "dagster_home"
        dagster_home.mkdir()
        if instance_kind == "postgres":
            from sensequant_assets_tests.services import postgres_server

            server = stack.enter_context(postgres_server())
            os.environ.update(server.env("postgres"))
            shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
            instance = dg.DagsterInstance.from_config(str(dagster_home))
        else:
            # the embedded default as `make setup` installs it (batched SQLite events)
            shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
            instance = dg.DagsterInstance.from_config(str(dagster_home))
        with instance:
            yield Bench(home, settings, build_defs(settings), instance)


@contextmanager
def timed(label: str, figures: dict[str, str]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    figures[label] = f"{time.perf_counter() - started:.1f} s"


def peak_memory_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(title: str, figures: dict[str, str]) -> None:
    print(f"\n{title}")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")


@contextmanager
def clean_env(home: Path) -> Iterator[None]:
    """This process's environment as the tests have it: only SENSEQUANT_HOME set."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("SENSEQUANT_", "BREEZE_")) or name == "DAGSTER_HOME":
            del os.environ[name]
    os.environ["SENSEQUANT_HOME"] = str(home)
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
