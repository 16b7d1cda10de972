"""Progress a person can watch through a long command: per phase, done/total, rate and ETA.

A deep historical run is 15-30 minutes of ingest runs and teacher runs. On a terminal, rich
draws one live bar per phase; in a log (CI, ``nohup``, Dagster's run launcher) the same figures
are printed as one line per tenth of the phase, because a redrawn bar is noise in a file. The
figures are rich's own (its task's completed count, speed and time remaining, the speed
estimated over the last ``SPEED_WINDOW`` seconds), so the bar, the log lines and the tag on each
launched run (``PROGRESS_TAG``, visible in Dagit's run list) always agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sensequant_assets.orchestration.run_pool import RunOutcome, RunPool, RunSpec

PROGRESS_TAG = "sensequant/progress"
SPEED_WINDOW = 120.0  # seconds: runs end every few seconds, so a short window jitters the ETA
LOG_STEPS = 10  # lines per phase when the output is not a terminal


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class Snapshot:
    """How far one phase is."""

    phase: str
    done: int
    total: int
    unit: str
    rate: float | None  # units per second, None before the first unit is done
    eta_seconds: float | None

    def line(self) -> str:
        """``ingest 1,200/4,542 partitions, 310/s, ETA 10s``."""
        text = f"{self.phase} {self.done:,}/{self.total:,} {self.unit}"
        if self.rate:
            text += f", {self.rate:,.1f}/s" if self.rate < 10 else f", {self.rate:,.0f}/s"
        if self.eta_seconds is not None and self.done < self.total:
            text += f", ETA {_duration(self.eta_seconds)}"
        return text


class PhaseTask:
    """One phase's counter: advance it as work completes, read it for tags and lines."""

    def __init__(
        self, progress: Progress, task: TaskID, name: str, unit: str, say: Callable[[str], None]
    ):
        self._progress, self._task, self.name, self.unit = progress, task, name, unit
        self._say = say
        self._logged = 0  # tenths of the phase already printed (log mode)

    def snapshot(self) -> Snapshot:
        task = self._progress.tasks[self._task]
        total = int(task.total or 0)
        speed = task.finished_speed or task.speed
        remaining = task.time_remaining
        return Snapshot(
            self.name, int(task.completed), total, self.unit,
            speed, None if remaining is None or not math.isfinite(remaining) else remaining,
        )  # fmt: skip

    def advance(self, units: int) -> None:
        self._progress.advance(self._task, units)
        snap = self.snapshot()
        if not self._progress.disable:
            self._progress.update(self._task, rate=f"{snap.rate:,.1f}/s" if snap.rate else "")
            return
        step = min(LOG_STEPS, snap.done * LOG_STEPS // max(1, snap.total))
        if step > self._logged:
            self._logged = step
            self._say(f"      {snap.line()}")


class PhaseProgress:
    """Live bars on a terminal, periodic lines elsewhere (``live`` overrides the guess)."""

    def __init__(
        self,
        say: Callable[[str], None] = print,
        console: Console | None = None,
        live: bool | None = None,
        clock: Callable[[], float] | None = None,
    ):
        self._console = console or Console()
        self.live = self._console.is_terminal if live is None else live
        self._say = say
        self._clock = clock

    @contextmanager
    def phase(self, name: str, total: int, unit: str) -> Iterator[PhaseTask]:
        columns = (
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn(unit), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(),
        )  # fmt: skip
        progress = Progress(
            *columns,
            console=self._console,
            speed_estimate_period=SPEED_WINDOW,
            disable=not self.live,
            get_time=self._clock,
        )
        with progress:
            task = progress.add_task(name, total=total, rate="")
            phase = PhaseTask(progress, task, name, unit, self._say)
            yield phase


def run_phase(
    pool: RunPool,
    specs: Sequence[RunSpec],
    progress: PhaseProgress,
    phase: str,
    unit: str,
    stop_on_failure: bool = False,
) -> list[RunOutcome]:
    """Issue a phase's runs on ``pool``, printing each run's lines and counting its ``units``;
    every run is tagged (``PROGRESS_TAG``) with how far the phase was when it started."""
    with progress.phase(phase, sum(spec.units for spec in specs), unit) as task:

        def report(outcome: RunOutcome) -> None:
            for line in outcome.lines:
                print(line)
            task.advance(outcome.spec.units)

        def launching(spec: RunSpec) -> RunSpec:
            return replace(spec, tags={**spec.tags, PROGRESS_TAG: task.snapshot().line()})

        return pool.run(specs, report, stop_on_failure, launching)
