"""Reading stored drift-check verdicts back from the Dagster instance.

The drift checks on a stage's signals are the only record of how each live session drifted
(``defs.checks.drift_check_results`` puts every session's severity and the model under
``by_session`` and ``model_id``); the demotion sensor and the staging trial read them here and
hand plain ``{session: severity}`` maps to the domain (``live.drift.session_severities``).
"""

import datetime as dt

import dagster as dg

from sensequant_assets.defs.checks import BY_SESSION, DRIFT_CHECKS
from sensequant_assets.live.drift import session_severities

HISTORY_LIMIT = 500
"""Evaluations read per check: more than a year of daily runs."""


def drift_by_session(
    instance: dg.DagsterInstance, asset: str, model_id: str, limit: int = HISTORY_LIMIT
) -> dict[dt.date, str]:
    """Each session's worst drift severity for ``model_id``'s calls in ``asset``."""
    by_check = {}
    for name in DRIFT_CHECKS:
        key = dg.AssetCheckKey(dg.AssetKey(asset), name)
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=limit)
        maps = []
        for record in reversed(records):  # oldest first
            evaluation = record.event.asset_check_evaluation if record.event else None
            if evaluation is None:
                continue
            metadata = evaluation.metadata
            model = metadata.get("model_id")
            sessions = metadata.get(BY_SESSION)
            if model is None or model.value != model_id or sessions is None:
                continue
            maps.append(dict(sessions.value))
        by_check[name] = maps
    return session_severities(by_check)
