"""File integrity: a file's SHA-256, and the one error for a file that is not what was recorded.

Teachers, students, manifests, approvals and deployed bundles all record SHA-256 digests; a
loader or a deployment that finds a file missing, extra or different raises
:class:`ModelIntegrityError` instead of using it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

CHUNK = 1 << 20
SHOWN_PROBLEMS = 5


class ModelIntegrityError(ValueError):
    """A model file, manifest or approved document is missing, extra or has another SHA-256."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def refuse_problems(subject: str, problems: Sequence[str]) -> None:
    """Raise one :class:`ModelIntegrityError` line naming the first problems, if there are any."""
    if not problems:
        return
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    raise ModelIntegrityError(f"{subject}: {shown}" + (f" (and {more} more)" if more > 0 else ""))
