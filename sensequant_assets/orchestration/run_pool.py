"""Issuing a command's Dagster runs a few at a time.

A historical run, ``sensequant ingest`` or ``sensequant train`` is many small runs (one per
symbol). A run is mostly Python: Dagster serialising and storing events, pandas, LightGBM on
one thread; one at a time they leave the other cores idle. :class:`RunPool` hands the runs to
worker processes, each holding definitions built from the same settings and the same instance,
so every run is still an ordinary run on that instance: Dagit shows it, partitions are
recorded the same way, and a failed one is re-run the same way.

Workers are spawned rather than forked, since the parent holds database connections and
threads that a fork would copy mid-use. An ephemeral instance lives in one process only, so
with one (``DAGSTER_HOME`` unset) the runs go one by one in the command's own process, as
they also do with ``SENSEQUANT_RUN_WORKERS=1``.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

import dagster as dg

from sensequant_assets.defs import build_defs
from sensequant_assets.orchestration.runs import QUIET, summary_lines
from sensequant_assets.settings import Settings

if TYPE_CHECKING:
    from dagster._core.instance.ref import InstanceRef  # what DagsterInstance.get_ref returns

# A worker's start-up (imports, definitions, instance: ~3 s) pays off over several runs only; a
# shorter list (the pilot's two symbols) runs in the command's own process.
MIN_RUNS_PER_WORKER = 4
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class RunSpec:
    """One run to issue: a job of the definitions, the line that names it, tags and config;
    ``units`` is its share of the phase's work (its partitions or windows) for progress."""

    job: str
    label: str
    tags: Mapping[str, str]
    run_config: Mapping[str, object] = field(default_factory=lambda: QUIET)
    units: int = 1


@dataclass(frozen=True)
class RunOutcome:
    spec: RunSpec
    run_id: str
    success: bool
    lines: tuple[str, ...]


Report = Callable[[RunOutcome], None]  # sees each outcome as its run completes
Launch = Callable[[RunSpec], RunSpec]  # sees each spec just before its run starts


class RunWorkerDied(RuntimeError):
    """A worker process ended without reporting (killed, or out of memory) during a run."""


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, spec: RunSpec) -> RunOutcome:
    """Run ``spec`` in this process on ``instance``."""
    job = defs.resolve_job_def(spec.job)
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=dict(spec.run_config),
        tags=dict(spec.tags),
    )
    return RunOutcome(spec, result.run_id, result.success, summary_lines(job, spec.label, result))


_worker: tuple[dg.Definitions, dg.DagsterInstance] | None = None


def _start_worker(settings: Settings, instance_ref: InstanceRef, parent: int) -> None:
    global _worker
    _die_with_parent(parent)
    _worker = (build_defs(settings), dg.DagsterInstance.from_ref(instance_ref))


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when the command dies, as its in-process run would.

    Otherwise a command killed with SIGKILL leaves its workers finishing runs nobody watches,
    which a re-run of the command would then overlap.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the command died before the request took effect
        os._exit(1)


def _execute_in_worker(spec: RunSpec) -> RunOutcome:
    assert _worker is not None, "the pool's initializer did not run"
    return execute(*_worker, spec)


class RunPool:
    """Runs :class:`RunSpec` lists on ``instance`` with up to ``workers`` at once.

    The worker processes start with the first list long enough to share and are reused by
    later lists (a historical run's ingest, then its teachers), so their start-up (imports,
    definitions, instance) is paid once. Use it as a context manager.
    """

    def __init__(
        self,
        settings: Settings,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        workers: int,
    ):
        self._settings = settings
        self._defs = defs
        self._instance = instance
        self.workers = 1 if instance.is_ephemeral else max(1, workers)
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> RunPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (a later :meth:`run` starts new ones)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def run(
        self,
        specs: Sequence[RunSpec],
        report: Report,
        stop_on_failure: bool = False,
        launching: Launch | None = None,
    ) -> list[RunOutcome]:
        """Issue ``specs``; ``report`` sees each outcome as it completes, and ``launching``
        (when given) each spec just before its run starts, returning the spec to run (so a
        tag can say how far the phase was at that moment).

        Lists shorter than ``MIN_RUNS_PER_WORKER`` per worker run in this process, one by one.
        Returns the outcomes in the order of ``specs``. With ``stop_on_failure`` no further run
        starts after the first failure (runs already under way finish and are reported).
        Raises :class:`RunWorkerDied` when a worker process dies mid-run.
        """
        launch = launching or (lambda spec: spec)
        if self.workers == 1 or len(specs) < MIN_RUNS_PER_WORKER * self.workers:
            return self._run_here(specs, report, stop_on_failure, launch)
        return self._run_in_workers(specs, report, stop_on_failure, launch)

    def _run_here(
        self, specs: Sequence[RunSpec], report: Report, stop_on_failure: bool, launch: Launch
    ) -> list[RunOutcome]:
        outcomes = []
        for spec in specs:
            outcome = execute(self._defs, self._instance, launch(spec))
            report(outcome)
            outcomes.append(outcome)
            if stop_on_failure and not outcome.success:
                break
        return outcomes

    def _run_in_workers(
        self, specs: Sequence[RunSpec], report: Report, stop_on_failure: bool, launch: Launch
    ) -> list[RunOutcome]:
        executor = self._pool()
        # Submit one run per free worker, not all at once, so a stop after a failure leaves
        # nothing queued behind the runs already under way.
        queue = list(enumerate(specs))[::-1]
        running: dict[Future[RunOutcome], int] = {}
        done: dict[int, RunOutcome] = {}
        try:
            while queue or running:
                while queue and len(running) < self.workers:
                    index, spec = queue.pop()
                    running[executor.submit(_execute_in_worker, launch(spec))] = index
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    outcome = self._collect(future, running, done, report)
                    if stop_on_failure and not outcome.success:
                        queue.clear()
        except BrokenProcessPool:
            # The executor has already stopped the other workers; a new list starts new ones.
            self._executor = None
            under_way = ", ".join(specs[i].label for i in sorted(running.values())) or "none"
            raise RunWorkerDied(
                f"a run worker process died (killed, or out of memory?); runs under way: "
                f"{under_way}. Finished runs are kept: re-run the command for the rest"
            ) from None
        return [done[index] for index in sorted(done)]

    @staticmethod
    def _collect(
        future: Future[RunOutcome],
        running: dict[Future[RunOutcome], int],
        done: dict[int, RunOutcome],
        report: Report,
    ) -> RunOutcome:
        """A finished run's outcome, reported and filed by its place in the list."""
        index = running.pop(future)
        outcome = future.result()
        report(outcome)
        done[index] = outcome
        return outcome

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self._settings, self._instance.get_ref(), os.getpid()),
            )
        return self._executor
