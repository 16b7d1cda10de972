"""Where every artifact lives: every file and directory name, and every path built from them.

Teachers are partitioned assets that outlive any single candidate, so each (symbol, window)
has a stable home under ``data/models/teachers/<window label>/``. A candidate is an immutable
bundle under ``data/models/live_candidate_<YYYYmmdd_HHMMSS>/`` holding copies of the teachers it
used, the student, and the run summaries; its release audit goes to
``release/audit_live_candidate_<same>/``, its stress tests to ``release/stress_tests_<same>/``.
A deployed copy goes to ``data/models/production/<candidate id>/`` (or ``staging/``): the
student and the approved evidence files. The warehouse file, the Delta root, the raw archive,
the registry and the call ledger live under ``data/`` too, and so does the live reward history
(``data/reward_history/<SYMBOL>.jsonl``: the production models' matured calls, rewarded).

Paths are built here and nowhere else. Every file and directory name is a constant of this
module, and every path joins them in a layout here: :class:`ArtifactLayout` (the home),
:class:`CandidateLayout`, :class:`AuditLayout`, :class:`StressLayout`, :class:`ModelFiles` (a
teacher's or the student's directory), :class:`BundleLayout` (a deployed copy),
:class:`ScratchLayout` (a simulated universe) and the functions beside them; other modules ask
them (the settings' ``duckdb_path``, ``raw_dir``, ... too). Data shipped with the package
(``reference/``, the gate's measured operating characteristics) and the user's input files
are not artifacts.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    import sqlalchemy as sa

    from sensequant_assets.settings import Settings

CANDIDATE_PREFIX = "live_candidate_"
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"

# Under SENSEQUANT_HOME.
DATA_DIR = "data"
MODELS_DIR = "models"
RELEASE_DIR = "release"
TEACHERS_DIR = "teachers"
PRODUCTION_DIR = "production"
STAGING_DIR = "staging"
PROGRESS_DIR = "progress"
DRYRUN_DIR = "dryrun"
RAW_DIR = "raw"
DELTA_DIR = "delta"
BREEZE_SDK_DIR = "breeze"
WAREHOUSE_FILE = "sensequant.duckdb"
LEDGER_FILE = "breeze_calls.sqlite"
HISTORY_START_FILE = "history_start"
REGISTRY_DIR = "registry"
REGISTRY_FILE = "candidates.sqlite"
DEPLOYMENT_LOCK = "deployment.lock"
CURRENT_FILE = "CURRENT"
PIN_FILE = "PINNED"  # beside production's CURRENT: a model a person exempted from demotion
"""In ``production/`` (and ``staging/``): the id of the live bundle, one line."""
RAW_SUFFIX = ".parquet"
RAW_FILES = f"*{RAW_SUFFIX}"
"""Glob of one dataset's raw-archive files; ``*/`` before it: every dataset's."""
PROGRESS_FILES = "*.json"
"""Glob of the progress files in ``progress/``."""
SCRATCH_CANDIDATE_DIR = "candidate"

# A candidate bundle.
TEACHER_RUNS_JSON = "teacher_runs.json"
STUDENT_RUNS_JSON = "student_runs.json"
TEACHER_MODELS_DIR = "teacher_models"
STUDENT_DIR = "student"
REWARD_HISTORY_DIR = "reward_history"
#: Every trial of a quarterly retrain's hyperparameter search (``training.search``).
SEARCH_TRIALS_JSON = "search_trials.json"

# A model directory: a teacher's, or the student's.
TEACHER_MODEL_FILE = "model.txt"
TEACHER_METADATA_FILE = "metadata.json"
STUDENT_MODEL_FILE = "student_model.txt"
STUDENT_METADATA_FILE = "student_metadata.json"
#: Beside the student's model: its drift reference (``live.drift.DriftReference``, JSON).
STUDENT_DRIFT_FILE = "student_drift_reference.json"

# A candidate's audit directory.
MANIFEST_FILE = "manifest.yaml"
BRIEFING_MD = "promotion_briefing.md"
BRIEFING_JSON = "promotion_briefing.json"
STAGING_REPORT_MD = "staging_report.md"  # written after approval, so never bound by it
STAGING_REPORT_JSON = "staging_report.json"
#: The candidate's data-quality and sentiment-coverage summary (``quality.audit``).
DATA_QUALITY_JSON = "data_quality.json"
VALIDATION_JSON = "validation_summary.json"
VALIDATION_MD = "validation_summary.md"
STAT_TESTS_JSON = "stat_tests.json"
GATE_JSON = "gate_decision.json"
OOS_PREDICTIONS = "oos_predictions.parquet"
REPORTS_DIR = "reports"
ACCURACY_REPORT = f"{REPORTS_DIR}/accuracy_report.html"
OPTIMIZATION_REPORT = f"{REPORTS_DIR}/optimization_report.html"
EVIDENCE_FILES: tuple[str, ...] = (MANIFEST_FILE, BRIEFING_MD, BRIEFING_JSON)
"""The audit-directory files a reviewer approves; the approval stores their SHA-256 and a
deployed bundle holds copies of them (see :mod:`sensequant_assets.registry.evidence`)."""

# A candidate's stress-test directory.
STRESS_SUMMARY_JSON = "stress_summary.json"
STRESS_REPORT_MD = "stress_report.md"


def stress_chart_name(slug: str, kind: str) -> str:
    """The file of one stress window's chart (``kind``: ``equity`` or ``drawdown``)."""
    return f"{slug}_{kind}.png"


def teacher_progress_name(run_id: str) -> str:
    """A teacher run's progress file in ``progress/``."""
    return f"teacher_model_{run_id}.json"


def raw_file_name(day: dt.date, run_id: str) -> str:
    """The raw-archive file of one run, written on ``day``."""
    return f"{day:%Y%m%d}_{run_id}{RAW_SUFFIX}"


def reward_history_name(symbol: str) -> str:
    """One symbol's reward history (JSON lines) in a ``reward_history/`` directory (a bundle's,
    or the home's live history under ``data/``)."""
    return f"{symbol}.jsonl"


REWARD_HISTORY_FILES = reward_history_name("*")
"""Glob of the per-symbol files in a ``reward_history/`` directory."""


def candidate_id_at(moment: dt.datetime) -> str:
    """``live_candidate_<timestamp>`` of ``moment`` (to the second)."""
    return CANDIDATE_PREFIX + moment.strftime(TIMESTAMP_FORMAT)


class _Under:
    """A layout's file or directory ``name`` under another of its paths (``parent``: an
    attribute, ``root`` by default), declared as a class attribute (``manifest =
    _Under(MANIFEST_FILE)``): each layout below lists its names, one a line."""

    def __init__(self, name: str, parent: str = "root") -> None:
        self.name = name
        self.parent = parent

    @overload
    def __get__(self, layout: None, owner: type) -> _Under: ...

    @overload
    def __get__(self, layout: object, owner: type) -> Path: ...

    def __get__(self, layout: object | None, owner: type) -> Path | _Under:
        return self if layout is None else getattr(layout, self.parent) / self.name


@dataclass(frozen=True)
class ModelFiles:
    """The two files of a model directory: the model (LightGBM's text format) and its record."""

    root: Path
    model_name: str
    metadata_name: str

    @classmethod
    def teacher(cls, root: Path) -> ModelFiles:
        return cls(Path(root), TEACHER_MODEL_FILE, TEACHER_METADATA_FILE)

    @classmethod
    def student(cls, root: Path) -> ModelFiles:
        return cls(Path(root), STUDENT_MODEL_FILE, STUDENT_METADATA_FILE)

    @property
    def model(self) -> Path:
        return self.root / self.model_name

    @property
    def metadata(self) -> Path:
        return self.root / self.metadata_name

    def named(self, name: str) -> Path:
        """The model file a record names (``model_file``)."""
        return self.root / name


@dataclass(frozen=True)
class AuditLayout:
    """Files of one candidate's audit directory (``release/audit_<candidate id>/``)."""

    root: Path

    def file(self, name: str) -> Path:
        """The audit file ``name`` (one of this module's audit-file constants)."""
        return self.root / name

    manifest = _Under(MANIFEST_FILE)
    briefing_md = _Under(BRIEFING_MD)
    briefing_json = _Under(BRIEFING_JSON)
    staging_report_md = _Under(STAGING_REPORT_MD)
    staging_report_json = _Under(STAGING_REPORT_JSON)
    data_quality = _Under(DATA_QUALITY_JSON)
    validation_json = _Under(VALIDATION_JSON)
    validation_md = _Under(VALIDATION_MD)
    stat_tests = _Under(STAT_TESTS_JSON)
    gate = _Under(GATE_JSON)
    oos_predictions = _Under(OOS_PREDICTIONS)
    accuracy_report = _Under(ACCURACY_REPORT)
    optimization_report = _Under(OPTIMIZATION_REPORT)


@dataclass(frozen=True)
class StressLayout:
    """Files of one candidate's stress-test directory (``release/stress_tests_<id>/``)."""

    root: Path

    summary = _Under(STRESS_SUMMARY_JSON)
    report = _Under(STRESS_REPORT_MD)

    def chart(self, name: str) -> Path:
        """A chart, by its :func:`stress_chart_name`."""
        return self.root / name


@dataclass(frozen=True)
class BundleLayout:
    """A deployed copy (``production/<id>/`` or ``staging/<id>/``): the student and the
    evidence files."""

    root: Path
    student_dir = _Under(STUDENT_DIR)

    def file(self, name: str) -> Path:
        """An evidence file (one of :data:`EVIDENCE_FILES`)."""
        return self.root / name


@dataclass(frozen=True)
class CandidateLayout:
    """Files of one candidate bundle."""

    root: Path

    @property
    def candidate_id(self) -> str:
        return self.root.name

    teacher_runs = _Under(TEACHER_RUNS_JSON)
    student_runs = _Under(STUDENT_RUNS_JSON)
    teacher_models = _Under(TEACHER_MODELS_DIR)
    student_dir = _Under(STUDENT_DIR)
    reward_history = _Under(REWARD_HISTORY_DIR)
    search_trials = _Under(SEARCH_TRIALS_JSON)

    def teacher_dir(self, window_label: str) -> Path:
        return teacher_dir(self.teacher_models, window_label)

    def reward_file(self, symbol: str) -> Path:
        return self.reward_history / reward_history_name(symbol)

    def reward_files(self) -> list[Path]:
        """The bundle's per-symbol reward files, by name."""
        return sorted(self.reward_history.glob(REWARD_HISTORY_FILES))


@dataclass(frozen=True)
class ArtifactLayout:
    """Artifact roots under ``SENSEQUANT_HOME``, and where the registry is (``database``: the
    deployment's Postgres database, or ``None`` for the SQLite file under the home)."""

    home: Path
    database: sa.URL | None = None

    @classmethod
    def of(cls, settings: Settings) -> ArtifactLayout:
        return cls(settings.home, settings.state_database)

    data_dir = _Under(DATA_DIR, "home")
    models = _Under(MODELS_DIR, "data_dir")
    release = _Under(RELEASE_DIR, "home")
    teachers_dir = _Under(TEACHERS_DIR, "models")  # every teacher, a directory per window
    production_dir = _Under(PRODUCTION_DIR, "models")
    production_pin = _Under(PIN_FILE, "production_dir")  # ``live.demotion.pin``
    staging_dir = _Under(STAGING_DIR, "models")
    # held by every deployment and rollback (``release.deploy_lock``), beside production
    deployment_lock = _Under(DEPLOYMENT_LOCK, "models")
    progress_dir = _Under(PROGRESS_DIR, "models")
    dryrun_root = _Under(DRYRUN_DIR, "data_dir")  # homes of ``historical-run --dryrun``
    raw_dir = _Under(RAW_DIR, "data_dir")  # the raw archive: a directory per dataset
    warehouse_file = _Under(WAREHOUSE_FILE, "data_dir")  # DuckDB (SENSEQUANT_WAREHOUSE=duckdb)
    delta_root = _Under(DELTA_DIR, "data_dir")  # Delta's root without SENSEQUANT_WAREHOUSE_URI
    ledger_file = _Under(LEDGER_FILE, "data_dir")  # the embedded Breeze call ledger
    breeze_sdk_dir = _Under(BREEZE_SDK_DIR, "data_dir")  # where the Breeze SDK writes
    # the earliest start a run asked for (``partition_history``): the partitions begin there
    history_start_file = _Under(HISTORY_START_FILE, "data_dir")
    # the production models' live rewards, a JSON-lines file per symbol (``live.rewards``)
    reward_history_dir = _Under(REWARD_HISTORY_DIR, "data_dir")

    def reward_file(self, symbol: str) -> Path:
        """One symbol's live reward history."""
        return self.reward_history_dir / reward_history_name(symbol)

    def teacher_dir(self, window_label: str) -> Path:
        return teacher_dir(self.teachers_dir, window_label)

    @property
    def registry(self) -> Path | sa.URL:
        """The candidate registry: its Postgres database, or its SQLite file."""
        return self.database or self.registry_file

    @property
    def registry_file(self) -> Path:
        """The embedded registry's SQLite file."""
        return self.data_dir / REGISTRY_DIR / REGISTRY_FILE

    def teacher_progress(self, run_id: str) -> Path:
        """A teacher run's progress file (``training.progress``)."""
        return self.progress_dir / teacher_progress_name(run_id)

    def dryrun_home(self, moment: dt.datetime) -> Path:
        """The home of a dry run started at ``moment``."""
        return self.dryrun_root / moment.strftime(TIMESTAMP_FORMAT)

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
        return CandidateLayout(self._bundle_dir(candidate_id))

    def new_candidate_id(self, now: dt.datetime | None = None) -> str:
        """``live_candidate_<timestamp>`` of ``now``, or of the current second.

        Ids have one-second resolution and a fast candidate (a retrain with nothing new) can
        follow another within the second, so without ``now`` a second whose candidate or
        audit directory already exists is skipped by waiting for the next one.
        """
        if now is not None:
            return candidate_id_at(now)
        while True:
            current = dt.datetime.now()
            candidate_id = candidate_id_at(current)
            taken = self._bundle_dir(candidate_id), self._audit_dir(candidate_id)
            if not any(path.exists() for path in taken):
                return candidate_id
            time.sleep(1.001 - current.microsecond / 1e6)

    def new_candidate(self, now: dt.datetime | None = None) -> CandidateLayout:
        return CandidateLayout(self._bundle_dir(self.new_candidate_id(now)))

    def _bundle_dir(self, candidate_id: str) -> Path:
        return self.models / candidate_id

    def deployed_bundle(self, stage_dir: Path, candidate_id: str) -> Path:
        """The copy of ``candidate_id`` deployed under ``stage_dir`` (production or staging)."""
        return stage_dir / candidate_id

    def audit_dir(self, candidate: CandidateLayout) -> Path:
        return self._audit_dir(candidate.candidate_id)

    def audit(self, candidate: CandidateLayout) -> AuditLayout:
        return AuditLayout(self.audit_dir(candidate))

    def _audit_dir(self, candidate_id: str) -> Path:
        return self.release / f"audit_{candidate_id}"

    def stress_dir(self, candidate: CandidateLayout) -> Path:
        return self.release / f"stress_tests_{candidate.candidate_id}"

    def stress(self, candidate: CandidateLayout) -> StressLayout:
        return StressLayout(self.stress_dir(candidate))


def manifest_in(directory: Path) -> Path:
    """The manifest of an audit directory, or of a deployed bundle (which holds a copy)."""
    return directory / MANIFEST_FILE


def drift_reference_in(student_dir: Path) -> Path:
    """The drift reference saved beside a student's model (absent from older bundles)."""
    return student_dir / STUDENT_DRIFT_FILE


def current_file(stage_dir: Path) -> Path:
    """The file naming the live bundle of ``stage_dir`` (production or staging)."""
    return stage_dir / CURRENT_FILE


def raw_dataset_dir(raw_dir: Path, dataset: str) -> Path:
    """One dataset's files in the raw archive."""
    return raw_dir / dataset


def raw_file(raw_dir: Path, dataset: str, day: dt.date, run_id: str) -> Path:
    return raw_dataset_dir(raw_dir, dataset) / raw_file_name(day, run_id)


def teacher_dir(teachers_root: Path, window_label: str) -> Path:
    """A teacher's directory under ``teachers_root`` (the home's, or a simulation's)."""
    return teachers_root / window_label


@dataclass(frozen=True)
class ScratchLayout:
    """A simulated universe's working directory (``evaluation.power``): its teachers and its
    one candidate bundle."""

    root: Path

    @property
    def teachers_dir(self) -> Path:
        return self.root / TEACHERS_DIR

    @property
    def candidate(self) -> CandidateLayout:
        return CandidateLayout(self.root / SCRATCH_CANDIDATE_DIR)
