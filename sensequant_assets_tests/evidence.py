"""An audit directory holding the three files an approval binds, for registry-level tests."""

from __future__ import annotations

from pathlib import Path

from sensequant_assets.artifacts import BRIEFING_JSON, BRIEFING_MD, MANIFEST_FILE


def write_evidence(audit_dir: Path) -> Path:
    """``manifest.yaml`` and the briefing (placeholder contents) in ``audit_dir``; returns it."""
    audit_dir.mkdir(parents=True, exist_ok=True)
    (audit_dir / MANIFEST_FILE).write_text(f"release_id: {audit_dir.name}\n")
    (audit_dir / BRIEFING_MD).write_text(f"# {audit_dir.name}\n")
    (audit_dir / BRIEFING_JSON).write_text('{"recommendation": "approve"}\n')
    return audit_dir
