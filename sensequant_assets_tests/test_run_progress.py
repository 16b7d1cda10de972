"""Phase progress: rich's figures, as lines in a log and as a live bar on a terminal."""

import io

from rich.console import Console

from sensequant_assets.orchestration.run_progress import PhaseProgress, Snapshot


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_a_line_per_tenth_with_rate_and_eta() -> None:
    clock, said = Clock(), []
    progress = PhaseProgress(said.append, live=False, clock=clock)
    with progress.phase("ingest", 1000, "partitions") as task:
        assert task.snapshot().line() == "ingest 0/1,000 partitions"
        for _ in range(20):  # 50 partitions every 2 s: 25 a second
            clock.now += 2.0
            task.advance(50)
    assert len(said) == 10
    assert said[0].strip() == "ingest 100/1,000 partitions, 25/s, ETA 36s"
    assert said[-1].strip() == "ingest 1,000/1,000 partitions, 25/s"


def test_a_big_run_is_one_line_not_one_per_tenth_it_crossed() -> None:
    said: list[str] = []
    with PhaseProgress(said.append, live=False, clock=Clock()).phase("t", 10, "windows") as task:
        task.advance(7)
    assert [line.strip() for line in said] == ["t 7/10 windows"]


def test_a_terminal_gets_a_live_bar_and_no_lines() -> None:
    screen, said, clock = io.StringIO(), [], Clock()
    console = Console(file=screen, force_terminal=True, width=120)
    progress = PhaseProgress(said.append, console=console, clock=clock)
    assert progress.live
    with progress.phase("teachers", 8, "windows") as task:
        for _ in range(8):
            clock.now += 1.0
            task.advance(1)
    assert said == []
    assert "teachers" in screen.getvalue() and "8/8" in screen.getvalue()


def test_durations_read_as_a_person_would() -> None:
    snap = Snapshot("ingest", 10, 453_000, "partitions", 812.4, 3725.0)
    assert snap.line() == "ingest 10/453,000 partitions, 812/s, ETA 1h 02m"
    assert Snapshot("x", 1, 3, "runs", 0.5, 80.0).line() == "x 1/3 runs, 0.5/s, ETA 1m 20s"
