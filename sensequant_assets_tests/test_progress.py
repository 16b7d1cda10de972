"""training/progress.py: the teacher run's snapshot and log lines."""

import json
from pathlib import Path

from sensequant_assets.training.progress import ProgressTracker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _snapshot(path: Path) -> dict:
    return json.loads(path.read_text())


def test_snapshots_are_throttled_but_failures_and_the_end_are_written(tmp_path: Path) -> None:
    clock, lines = Clock(), []
    path = tmp_path / "progress.json"
    tracker = ProgressTracker(6, path, lines.append, every=3, clock=clock, write_interval=1.0)
    tracker.update("completed", "A_1")
    assert _snapshot(path)["done"] == 1  # the first update is written at once
    clock.now = 0.5
    tracker.update("skipped", "A_2")
    assert _snapshot(path)["done"] == 1  # within the interval: not rewritten
    tracker.update("failed", "A_3")
    assert _snapshot(path)["counts"] == {"completed": 1, "skipped": 1, "failed": 1}
    clock.now = 0.9
    tracker.update("completed", "A_4")
    assert _snapshot(path)["done"] == 3
    clock.now = 2.0
    tracker.update("completed", "A_5")
    assert _snapshot(path)["last"] == "A_5"
    clock.now = 2.1
    tracker.update("completed", "A_6")
    final = _snapshot(path)
    assert (final["done"], final["total"], final["eta_seconds"]) == (6, 6, 0.0)
    assert lines == [  # every third window and the last
        "3/6 windows (completed 1, failed 1, skipped 1); ETA 0s",
        "6/6 windows (completed 4, failed 1, skipped 1); ETA 0s",
    ]
