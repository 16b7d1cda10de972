"""The release audit: ``manifest.yaml``, the one record of what a candidate is and came from.

It holds the seed's fields (release id, status, training symbols and dates, headline
validation and test numbers, the artifact list) plus the lineage a promotion gate needs, and
the SHA-256 of every artifact of the candidate bundle and of its audit directory (files
written before the manifest). ``verify_artifacts`` recomputes them: promotion refuses a
candidate whose files no longer match. The manifest cannot hash itself or the briefing written
after it: approving records those digests (:mod:`sensequant_assets.registry.evidence`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from sensequant_assets.artifacts import MANIFEST_FILE, AuditLayout
from sensequant_assets.atomic import write_atomic
from sensequant_assets.integrity import file_sha256, refuse_problems
from sensequant_assets.release.briefing import StageOutputs
from sensequant_assets.release.lineage import artifact_hashes
from sensequant_assets.release.quality_section import manifest_quality

MANIFEST_VERSION = 1
READY_FOR_REVIEW = "ready-for-review"
# libyaml's emitter and parser write and read the same YAML as PyYAML's pure-Python ones, ten
# times faster (a 102-symbol manifest lists ~6,000 artifacts); the pure ones stay the fallback.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def build_manifest(
    *,
    release_id: str,
    home: Path,
    candidate_dir: Path,
    audit_dir: Path,
    sections: dict[str, Any],
    lineage: dict[str, Any],
    configuration: dict[str, Any],
) -> dict[str, Any]:
    """The manifest as a plain mapping; artifact paths are relative to ``home``."""
    candidate_path, audit_path = _relative(candidate_dir, home), _relative(audit_dir, home)
    artifacts = {
        f"{candidate_path}/{name}": sha for name, sha in artifact_hashes(candidate_dir).items()
    }
    artifacts.update(
        {
            f"{audit_path}/{name}": sha
            for name, sha in artifact_hashes(audit_dir, exclude=(MANIFEST_FILE,)).items()
            if not name.startswith("promotion_briefing")
        }
    )
    return {
        "manifest_version": MANIFEST_VERSION,
        "release_id": release_id,
        "status": READY_FOR_REVIEW,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "candidate_dir": candidate_path,
        "audit_dir": audit_path,
        **sections,
        "lineage": lineage,
        "configuration": configuration,
        "artifacts": artifacts,
    }


def headline_sections(outputs: StageOutputs, universe_snapshot: str) -> dict[str, Any]:
    """The manifest's training, validation, test, stress, gate and data-quality sections, copied
    from the stage outputs (which must include the student, the statistical tests and the gate)."""
    student = outputs.student_runs or {}
    runs = (outputs.teacher_runs or {}).get("runs", [])
    tests = outputs.stat_tests or {}
    paired = tests.get("paired_accuracy_tests", {})
    validation = outputs.validation
    return {
        "training": {
            "symbols": student.get("symbols"),
            "date_range": student.get("date_range"),
            "universe_snapshot": universe_snapshot,
            "label": student.get("label"),
            "teacher_windows": {
                status: sorted(r["window_label"] for r in runs if r["status"] == status)
                for status in ("completed", "skipped", "failed")
            },
            "distillation": student.get("distillation"),
            "reward_loop": (student.get("rewards") or {}).get("config"),
            "hyperparameter_search": student.get("search"),
        },
        "validation": {
            "out_of_sample": validation["out_of_sample"],
            "accuracy": validation["classification"]["accuracy"],
            "baseline_accuracy": {
                name: report["accuracy"]
                for name, report in validation["baselines_classification"].items()
            },
        }
        if validation
        else None,
        "statistical_tests": {
            "rank_ic": ((tests.get("skill") or {}).get("rank_ic") or {}).get("mean"),
            "p_rank_ic": ((tests.get("skill") or {}).get("rank_ic") or {}).get("p_value"),
            "dsr": (tests.get("dsr") or {}).get("dsr"),
            "dsr_trials": (tests.get("dsr") or {}).get("n_trials"),
            "p_vs_champion": (tests.get("champion") or {}).get("p_value"),
            "p_vs_majority": paired.get("majority_class", {}).get("p_value"),
            "p_vs_yesterday": paired.get("yesterday_direction", {}).get("p_value"),
        },
        "stress_tests": {"overall_score": outputs.stress.get("overall_score")}
        if outputs.stress
        else None,
        "gate": {"recommendation": (outputs.gate or {}).get("recommendation")},
        "data_quality": manifest_quality(outputs.data_quality),
    }


def write_manifest(audit_dir: Path, manifest: dict[str, Any]) -> Path:
    """Atomically and durably write ``manifest.yaml`` into ``audit_dir``."""
    text = yaml.dump(manifest, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)
    return write_atomic(AuditLayout(audit_dir).manifest, text.encode("utf-8"))


def read_manifest(audit_dir: Path) -> dict[str, Any]:
    path = AuditLayout(audit_dir).manifest
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: materialize release_audit first")
    return parse_manifest(path.read_bytes())


def parse_manifest(data: bytes) -> dict[str, Any]:
    """A manifest from its bytes (a caller that checked their SHA-256 parses those very bytes)."""
    return yaml.load(data.decode("utf-8"), Loader=_LOADER)


def verify_artifacts(manifest: dict[str, Any], home: Path) -> int:
    """Recompute every listed SHA-256 under ``home``; raise
    :class:`~sensequant_assets.integrity.ModelIntegrityError` naming the first problems found.

    Returns the number of files verified.
    """
    problems = []
    for relative, expected in manifest["artifacts"].items():
        path = home / relative
        if not path.is_file():
            problems.append(f"{relative} is missing")
        elif (actual := file_sha256(path)) != expected:
            problems.append(f"{relative} has SHA-256 {actual}, the manifest records {expected}")
    refuse_problems(f"release {manifest['release_id']} does not match its manifest", problems)
    return len(manifest["artifacts"])


def _relative(path: Path, home: Path) -> str:
    try:
        return path.resolve().relative_to(home.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()
