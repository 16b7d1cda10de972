"""What `sensequant prune` may delete, and when: a documented retention, never the evidence.

Kept for ever: the warehouse, the live teachers, production and staging bundles, every
candidate bundle and audit directory the registry names (whatever its status), and the
registry itself. Pruned, once older than their retention:

- raw archive files (``data/raw/<table>/*.parquet``, rows as received): 180 days;
- teacher progress files (``data/models/progress/*.json``): 14 days;
- dry-run homes (``data/dryrun/<timestamp>/``): 7 days;
- the teacher copies (``teacher_models/``) of candidate bundles the registry does not name
  (a run that died before it was recorded): 7 days. Without a registry file nothing is
  known to be unreferenced, so no bundle is touched.

Age is the file's or folder's modification time.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sensequant_assets.artifacts import PROGRESS_FILES, RAW_FILES, ArtifactLayout

DAY = 86_400.0


@dataclass(frozen=True)
class Retention:
    raw_days: int = 180
    progress_days: int = 14
    dryrun_days: int = 7
    unreferenced_days: int = 7


@dataclass(frozen=True)
class Doomed:
    path: Path
    reason: str
    size: int


@dataclass
class PrunePlan:
    doomed: list[Doomed] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(d.size for d in self.doomed)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _older(path: Path, days: int, now: float) -> bool:
    return now - path.stat().st_mtime > days * DAY


def plan_prune(
    layout: ArtifactLayout,
    raw_dir: Path,
    registry_names: set[str] | None,
    retention: Retention = Retention(),
    now: dt.datetime | None = None,
) -> PrunePlan:
    """Everything past its retention; ``registry_names`` None means no registry exists."""
    moment = (now or dt.datetime.now()).timestamp()
    plan = PrunePlan()

    def add(paths: list[Path], days: int, reason: str) -> None:
        for path in sorted(paths):
            if _older(path, days, moment):
                plan.doomed.append(Doomed(path, f"{reason} older than {days} days", _size(path)))

    raw = list(raw_dir.glob(f"*/{RAW_FILES}")) if raw_dir.is_dir() else []
    add(raw, retention.raw_days, "raw archive file")
    progress_dir = layout.progress_dir
    progress = list(progress_dir.glob(PROGRESS_FILES)) if progress_dir.is_dir() else []
    add(progress, retention.progress_days, "progress file")
    root = layout.dryrun_root
    add([p for p in root.iterdir() if p.is_dir()] if root.is_dir() else [],
        retention.dryrun_days, "dry-run home")  # fmt: skip
    bundles = layout.candidate_bundles()
    if registry_names is None:
        if bundles:
            plan.notes.append("no registry file: candidate bundles are all kept")
        return plan
    copies = [
        b.teacher_models
        for b in bundles
        if b.candidate_id not in registry_names and b.teacher_models.is_dir()
    ]
    add(copies, retention.unreferenced_days, "teacher copies of a candidate the registry lacks")
    return plan


def apply_prune(plan: PrunePlan) -> None:
    """Delete what the plan names (a path already gone is no error)."""
    for doomed in plan.doomed:
        if doomed.path.is_dir():
            shutil.rmtree(doomed.path, ignore_errors=False)
        else:
            doomed.path.unlink(missing_ok=True)
