"""A deployed bundle holds exactly what an approval bound: nothing missing, nothing extra.

``production/<id>/`` (and ``staging/<id>/``) holds ``student/`` and copies of the evidence
files (manifest and briefing). What every file must hash to comes from the approval: the
registry's digests of the evidence files and, through the manifest those digests pin, the
SHA-256 of each student file. A bundle is built in a temporary directory, every copied file is
checked there, and only then is it published; a bundle already on disk is checked the same way
before it is used and never overwritten, since one that does not verify is evidence to examine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sensequant_assets.artifacts import (
    EVIDENCE_FILES,
    MANIFEST_FILE,
    STUDENT_DIR,
    AuditLayout,
    BundleLayout,
    manifest_in,
)
from sensequant_assets.atomic import publish_dir
from sensequant_assets.integrity import ModelIntegrityError, file_sha256, refuse_problems
from sensequant_assets.registry import CandidateRun
from sensequant_assets.release.manifest import parse_manifest


def approved_files(
    run: CandidateRun, manifest_dir: Path, subject: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The manifest in ``manifest_dir``, if it is the one ``run``'s approval bound, and the
    SHA-256 each file of a bundle of ``run`` must have, by path relative to the bundle.

    Errors are :class:`ModelIntegrityError` lines starting with ``subject``."""
    approved = dict(run.approved_evidence)
    if not approved:
        raise ModelIntegrityError(
            f"{run.run_id} was approved before approvals recorded the SHA-256 of the manifest "
            "and briefing, so nothing binds its files: it is not deployed"
        )
    try:
        data = manifest_in(manifest_dir).read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(f"{subject}: {MANIFEST_FILE} is missing") from None
    if (actual := hashlib.sha256(data).hexdigest()) != approved[MANIFEST_FILE]:
        raise ModelIntegrityError(
            f"{subject}: {MANIFEST_FILE} has SHA-256 {actual}, the approval recorded "
            f"{approved[MANIFEST_FILE]}"
        )
    manifest = parse_manifest(data)
    prefix = f"{manifest['candidate_dir']}/{STUDENT_DIR}/"
    student = {
        f"{STUDENT_DIR}/{name.removeprefix(prefix)}": sha
        for name, sha in manifest["artifacts"].items()
        if name.startswith(prefix)
    }
    if not student:
        raise ModelIntegrityError(f"{subject}: the approved manifest lists no student file")
    return manifest, {**student, **approved}


def verify_bundle(bundle: Path, expected: Mapping[str, str], subject: str) -> None:
    """Raise :class:`ModelIntegrityError` (starting with ``subject``) unless ``bundle`` holds
    exactly the files of ``expected`` (relative path to SHA-256) as regular files."""
    found: dict[str, Path] = {}
    problems = []
    for root, dirs, files in os.walk(bundle):
        for name in sorted([*dirs, *files]):
            path = Path(root, name)
            relative = path.relative_to(bundle).as_posix()
            if path.is_symlink():
                problems.append(f"{relative} is a symbolic link")
            elif name in files:
                found[relative] = path
    for relative, sha in sorted(expected.items()):
        if relative not in found:
            problems.append(f"{relative} is missing")
        elif (actual := file_sha256(found[relative])) != sha:
            problems.append(f"{relative} has SHA-256 {actual}, approved {sha}")
    extra = sorted(found.keys() - expected.keys())
    problems += [f"{name} is not part of the approved bundle" for name in extra]
    refuse_problems(subject, problems)


def install_bundle(
    student_dir: Path, audit_dir: Path, target: Path, expected: Mapping[str, str], run_id: str
) -> None:
    """Copy the student and the evidence files into a temporary directory, verify every copy
    against ``expected``, then publish it as ``target`` (fsynced, renamed into place)."""
    audit = AuditLayout(audit_dir)
    with publish_dir(target) as staging:
        copy = BundleLayout(staging)
        shutil.copytree(student_dir, copy.student_dir, symlinks=True)
        for name in EVIDENCE_FILES:
            if audit.file(name).is_file():
                shutil.copy2(audit.file(name), copy.file(name))
        verify_bundle(staging, expected, f"{run_id}: the copy made for {target} was refused")
