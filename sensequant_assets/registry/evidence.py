"""What an approval binds: the SHA-256 of the documents the reviewer read.

``manifest.yaml`` records the SHA-256 of every model file and audit output of a candidate; the
promotion briefing (``.md`` and ``.json``) is what the reviewer read. Approving stores the
digests of those three files on the run and in the approval's audit-log row, so a file changed
afterwards (a model swapped and the manifest re-hashed to match, a briefing edited to say
APPROVE) no longer matches the approval, and deployment refuses it.
"""

from __future__ import annotations

from pathlib import Path

from sensequant_assets.artifacts import EVIDENCE_FILES, AuditLayout
from sensequant_assets.integrity import file_sha256


def evidence_digests(audit_dir: Path) -> dict[str, str]:
    """SHA-256 of each of :data:`~sensequant_assets.artifacts.EVIDENCE_FILES` in ``audit_dir``.

    Raises :class:`FileNotFoundError` naming every missing one: there is nothing to approve.
    """
    audit = AuditLayout(audit_dir)
    missing = [name for name in EVIDENCE_FILES if not audit.file(name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)} missing from {audit_dir}: materialize release_audit and "
            "promotion_briefing first"
        )
    return {name: file_sha256(audit.file(name)) for name in EVIDENCE_FILES}
