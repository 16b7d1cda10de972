"""When the production model must go: the automatic demotion rule, as a pure decision.

Two kinds of evidence, each required to *persist* for K sessions so that one bad week (which
the band's 5% tail produces about once a quarter by chance) does not roll production back:

* the live scorecard's rolling rank IC below the walk-forward's band for K consecutive
  matured sessions (:func:`~sensequant_assets.live.scorecard.scorecard`); the rank IC is the
  gate's own skill measure, so the model is judged live by what promoted it;
* an ERROR drift verdict (:mod:`~sensequant_assets.live.drift`) on each of the last K sessions.

A person can pin the model (:func:`pin`, ``sensequant candidates pin``): the decision then
reports what it would have done and does not demote. The pin is a small JSON file beside
``production/CURRENT`` naming the model, who pinned it, when and why; it holds only while that
model is live. K defaults to 5 sessions (``SENSEQUANT_DEMOTION_SESSIONS``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sensequant_assets.atomic import fsync_path, write_atomic

if TYPE_CHECKING:
    from sensequant_assets.artifacts import ArtifactLayout

DEMOTION_SESSIONS = 5
JUDGED_MEASURE = "rank_ic"


@dataclass(frozen=True)
class DemotionDecision:
    demote: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    pinned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "demote": self.demote,
            "reasons": self.reasons,
            "figures": self.figures,
            "pinned": self.pinned,
        }


def decide_demotion(
    model_id: str,
    card: Mapping[str, Any],
    drift_verdicts: Sequence[str],
    sessions: int = DEMOTION_SESSIONS,
    pinned: bool = False,
) -> DemotionDecision:
    """Demote ``model_id`` when its rolling rank IC sat below the band for ``sessions``
    consecutive sessions, or drift was ERROR on each of the last ``sessions`` sessions.

    ``card`` is a :func:`~sensequant_assets.live.scorecard.scorecard` report;
    ``drift_verdicts`` the worst drift severity per session, oldest first.
    """
    if sessions < 1:
        raise ValueError(f"the demotion window must be ≥ 1 session, got {sessions}")
    measure = card["measures"][JUDGED_MEASURE]
    below = int(measure["sessions_below_band"])
    band = measure["band"]
    recent = list(drift_verdicts)[-sessions:]
    drifting = len(recent) == sessions and all(v == "error" for v in recent)
    reasons = []
    if below >= sessions:
        reasons.append(
            f"{model_id}: rolling {band['window']}-session rank IC {measure['rolling']:+.4f} "
            f"below the walk-forward band [{band['low']:+.4f}, {band['high']:+.4f}] for {below} "
            f"consecutive sessions (limit {sessions})"
        )
    if drifting:
        reasons.append(f"{model_id}: drift check ERROR on each of the last {sessions} sessions")
    figures = {
        "sessions_below_band": below,
        "rolling_rank_ic": measure["rolling"],
        "band": band,
        "drift_recent": recent,
        "limit_sessions": sessions,
    }
    if pinned and reasons:
        reasons = [f"pinned by a person: not demoted although {r}" for r in reasons]
        return DemotionDecision(False, reasons, figures, pinned=True)
    return DemotionDecision(bool(reasons), reasons, figures, pinned=pinned)


def pin(layout: ArtifactLayout, model_id: str, by: str, reason: str) -> dict[str, str]:
    """Stop automatic demotion of ``model_id`` (it must be the live model)."""
    record = {"model_id": model_id, "pinned_by": by, "reason": reason,
              "pinned_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
    write_atomic(layout.production_pin, json.dumps(record, indent=2).encode())
    return record


def unpin(layout: ArtifactLayout) -> bool:
    """Let automatic demotion judge the live model again; False when nothing was pinned."""
    try:
        layout.production_pin.unlink()
    except FileNotFoundError:
        return False
    fsync_path(layout.production_pin.parent)
    return True


def pinned_model(layout: ArtifactLayout) -> str | None:
    """The model id a person pinned, or None."""
    try:
        return str(json.loads(layout.production_pin.read_text())["model_id"])
    except FileNotFoundError:
        return None
