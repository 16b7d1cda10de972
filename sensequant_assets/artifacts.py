"""Where every model artifact lives: the one directory scheme all stages read.

Teachers are partitioned assets that outlive any single candidate, so each (symbol, window)
has a stable home under ``data/models/teachers/<window label>/``. A candidate is an immutable
bundle under ``data/models/live_candidate_<YYYYmmdd_HHMMSS>/`` holding copies of the teachers it
used, the student, and the run summaries; its release audit goes to
``release/audit_live_candidate_<same>/``. A deployed copy goes to
``data/models/production/<candidate id>/`` (or ``staging/``): the student and the approved
evidence files. Paths are built here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

    from sensequant_assets.settings import Settings

CANDIDATE_PREFIX = "live_candidate_"
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"

STUDENT_DIR = "student"
MANIFEST_FILE = "manifest.yaml"
BRIEFING_MD = "promotion_briefing.md"
BRIEFING_JSON = "promotion_briefing.json"
#: The candidate's data-quality and sentiment-coverage summary (``quality.audit``).
DATA_QUALITY_JSON = "data_quality.json"
EVIDENCE_FILES: tuple[str, ...] = (MANIFEST_FILE, BRIEFING_MD, BRIEFING_JSON)
"""The audit-directory files a reviewer approves; the approval stores their SHA-256 and a
deployed bundle holds copies of them (see :mod:`sensequant_assets.registry.evidence`)."""


@dataclass(frozen=True)
class CandidateLayout:
    """Files of one candidate bundle."""

    root: Path

    @property
    def candidate_id(self) -> str:
        return self.root.name

    @property
    def teacher_runs(self) -> Path:
        return self.root / "teacher_runs.json"

    @property
    def student_runs(self) -> Path:
        return self.root / "student_runs.json"

    @property
    def teacher_models(self) -> Path:
        return self.root / "teacher_models"

    def teacher_dir(self, window_label: str) -> Path:
        return self.teacher_models / window_label

    @property
    def student_dir(self) -> Path:
        return self.root / STUDENT_DIR

    @property
    def reward_history(self) -> Path:
        return self.root / "reward_history"


@dataclass(frozen=True)
class ArtifactLayout:
    """Artifact roots under ``SENSEQUANT_HOME``, and where the registry is (``database``: the
    deployment's Postgres database, or ``None`` for the SQLite file under the home)."""

    home: Path
    database: sa.URL | None = None

    @classmethod
    def of(cls, settings: Settings) -> ArtifactLayout:
        return cls(settings.home, settings.state_database)

    @property
    def models(self) -> Path:
        return self.home / "data" / "models"

    @property
    def release(self) -> Path:
        return self.home / "release"

    def teacher_dir(self, window_label: str) -> Path:
        return self.models / "teachers" / window_label

    @property
    def registry(self) -> Path | sa.URL:
        """The candidate registry: its Postgres database, or its SQLite file."""
        return self.database or self.registry_file

    @property
    def registry_file(self) -> Path:
        """The embedded registry's SQLite file."""
        return self.home / "data" / "registry" / "candidates.sqlite"

    @property
    def production_dir(self) -> Path:
        return self.models / "production"

    @property
    def staging_dir(self) -> Path:
        return self.models / "staging"

    @property
    def deployment_lock(self) -> Path:
        """Held by every deployment and rollback (``release.deploy_lock``), beside production."""
        return self.models / "deployment.lock"

    @property
    def progress_dir(self) -> Path:
        return self.models / "progress"

    @property
    def dryrun_root(self) -> Path:
        """Homes of ``historical-run --dryrun``, one ``<timestamp>/`` each."""
        return self.home / "data" / "dryrun"

    def candidate_bundles(self) -> list[CandidateLayout]:
        """Every ``live_candidate_*`` bundle on disk, oldest id first."""
        if not self.models.is_dir():
            return []
        found = sorted(p for p in self.models.glob(f"{CANDIDATE_PREFIX}*") if p.is_dir())
        return [CandidateLayout(p) for p in found]

    def candidate(self, candidate_id: str) -> CandidateLayout:
        """The bundle of an existing or pre-assigned candidate id (``live_candidate_<ts>``)."""
        stamp = candidate_id.removeprefix(CANDIDATE_PREFIX)
        try:
            dt.datetime.strptime(stamp, TIMESTAMP_FORMAT)
        except ValueError:
            raise ValueError(
                f"{candidate_id!r} is not a candidate id ({CANDIDATE_PREFIX}YYYYmmdd_HHMMSS)"
            ) from None
        if not candidate_id.startswith(CANDIDATE_PREFIX):
            raise ValueError(f"{candidate_id!r} must start with {CANDIDATE_PREFIX}")
        return CandidateLayout(self.models / candidate_id)

    def new_candidate_id(self, now: dt.datetime | None = None) -> str:
        """``live_candidate_<timestamp>`` of ``now``, or of the current second.

        Ids have one-second resolution and a fast candidate (a retrain with nothing new) can
        follow another within the second, so without ``now`` a second whose candidate or
        audit directory already exists is skipped by waiting for the next one.
        """
        if now is not None:
            return CANDIDATE_PREFIX + now.strftime(TIMESTAMP_FORMAT)
        while True:
            current = dt.datetime.now()
            candidate_id = CANDIDATE_PREFIX + current.strftime(TIMESTAMP_FORMAT)
            taken = self.models / candidate_id, self.release / f"audit_{candidate_id}"
            if not any(path.exists() for path in taken):
                return candidate_id
            time.sleep(1.001 - current.microsecond / 1e6)

    def new_candidate(self, now: dt.datetime | None = None) -> CandidateLayout:
        return CandidateLayout(self.models / self.new_candidate_id(now))

    def deployed_bundle(self, stage_dir: Path, candidate_id: str) -> Path:
        """The copy of ``candidate_id`` deployed under ``stage_dir`` (production or staging)."""
        return stage_dir / candidate_id

    def audit_dir(self, candidate: CandidateLayout) -> Path:
        return self.release / f"audit_{candidate.candidate_id}"

    def stress_dir(self, candidate: CandidateLayout) -> Path:
        return self.release / f"stress_tests_{candidate.candidate_id}"
