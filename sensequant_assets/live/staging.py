"""The staging trial's verdict: does an approved challenger hold up live next to the champion?

An approved candidate scores live sessions in shadow (``staging_signals``) beside production.
The trial is a check that the model works *live* — features computed right, the model file the
one that was validated, nothing drifting — not a second test of skill: telling a rank IC of
0.01 from 0.02 needs hundreds of sessions, and the gate's paired champion test already did that
on the walk-forward's rows. So the tolerance is wide enough to pass a challenger that is as
good as the champion on a few noisy days and narrow enough to stop one that is broken: its mean
daily rank IC over the matured shared sessions may trail the champion's by at most
:data:`IC_TOLERANCE` (a single NIFTY 100 day's rank IC has a standard deviation near 0.1, and
two models scoring the same rows differ far less than that unless one is broken).

Labels mature h sessions after a call, so a trial of ``SENSEQUANT_STAGING_SESSIONS`` sessions
(default 2, the story's 48 hours) is judged only once at least :data:`MIN_MATURED` of its
sessions have matured: with h = 7 the verdict comes no earlier than the eighth staged session.
Until then it is ``waiting``, and the registry keeps the candidate in staging with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

STAGING_SESSIONS = 2
MIN_MATURED = 1
IC_TOLERANCE = 0.05
Outcome = Literal["waiting", "promote", "stays"]


@dataclass(frozen=True)
class StagingVerdict:
    outcome: Outcome
    reasons: list[str]
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reasons": self.reasons, "figures": self.figures}


def staging_verdict(
    challenger_daily_ic: pd.Series,
    champion_daily_ic: pd.Series | None,
    staged_sessions: int,
    worst_drift: str,
    unscored_sessions: int = 0,
    sessions: int = STAGING_SESSIONS,
    tolerance: float = IC_TOLERANCE,
) -> StagingVerdict:
    """The trial's outcome from the challenger's daily rank IC on matured sessions, the
    champion's on the same dates (None without a production model), how many sessions were
    staged, the worst drift severity seen and how many staged sessions left universe symbols
    unscored."""
    if staged_sessions < sessions:
        return StagingVerdict(
            "waiting", [f"{staged_sessions} of {sessions} staging session(s) scored so far"]
        )
    shared = challenger_daily_ic.dropna()
    if champion_daily_ic is not None:
        shared = shared[shared.index.isin(champion_daily_ic.dropna().index)]
    if len(shared) < MIN_MATURED:
        return StagingVerdict(
            "waiting",
            [
                f"{len(shared)} matured session(s) shared with the champion, need "
                f"{MIN_MATURED}: labels mature h sessions after a call"
            ],
        )
    figures: dict[str, Any] = {
        "matured_sessions": len(shared),
        "challenger_rank_ic": float(shared.mean()),
        "tolerance": tolerance,
    }
    problems = []
    if champion_daily_ic is not None:
        champion = float(champion_daily_ic.reindex(shared.index).mean())
        gap = float(shared.mean()) - champion
        figures |= {"champion_rank_ic": champion, "gap": gap}
        if gap < -tolerance:
            problems.append(
                f"rank IC {shared.mean():+.4f} against the champion's {champion:+.4f} over "
                f"{len(shared)} matured session(s): worse by more than {tolerance:g}"
            )
    if worst_drift == "error":
        problems.append("a drift check was ERROR during the trial")
    if unscored_sessions:
        problems.append(f"{unscored_sessions} staged session(s) left universe symbols unscored")
    if problems:
        return StagingVerdict("stays", problems, figures)
    held = (
        "no champion to compare with"
        if champion_daily_ic is None
        else f"within {tolerance:g} of the champion's rank IC"
    )
    return StagingVerdict(
        "promote", [f"held up over {len(shared)} matured session(s): {held}"], figures
    )
