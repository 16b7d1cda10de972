"""Does the candidate beat the model in production (the champion) on the same rows?

A candidate that has an edge but a smaller one than the champion's should not replace it.
Both models' out-of-sample predictions are stored (``oos_predictions.parquet`` in each audit
dir), each made by a walk-forward that never saw the rows it scored, so they are compared on
the rows both scored: the same dates and symbols, and the candidate's realised forward
returns. The statistic is the daily difference of their rank ICs (candidate − champion),
tested one-sided by the overlap-robust batch-means test (H1: the candidate is better).

Rows the two share can be few when the champion was validated on older history; with fewer
than ``block_test.MIN_BATCHES`` batches there is no p-value and a person has to judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sensequant_assets.evaluation.block_test import block_mean_test
from sensequant_assets.evaluation.skill import daily_rank_ic, score

KEYS = ["date", "symbol"]


def champion_comparison(
    candidate_oos: pd.DataFrame,
    champion_oos: pd.DataFrame,
    champion_id: str,
    horizon: int,
    sectors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The paired rank-IC test of the candidate against ``champion_id``'s stored predictions
    (both rank ICs sector-neutral with ``sectors``, as the gate's ``rank_ic``)."""
    champion = champion_oos[KEYS].assign(
        date=pd.to_datetime(champion_oos["date"]), champion_score=score(champion_oos).to_numpy()
    )
    candidate = candidate_oos.assign(date=pd.to_datetime(candidate_oos["date"]))
    shared = candidate.merge(champion.drop_duplicates(KEYS), on=KEYS, how="inner")
    candidate_ic = daily_rank_ic(shared, sectors=sectors)
    champion_ic = daily_rank_ic(shared, shared["champion_score"], sectors)
    difference = (candidate_ic - champion_ic).dropna()
    test = block_mean_test(difference, horizon)
    return {
        "champion": champion_id,
        "shared_rows": len(shared),
        "shared_sessions": int(shared["date"].nunique()),
        "candidate_rank_ic": float(candidate_ic.mean()) if len(candidate_ic) else None,
        "champion_rank_ic": float(champion_ic.mean()) if len(champion_ic) else None,
        "test": test,
        "p_value": test["p_value"],
    }


def compare_with_champion(
    candidate_oos: pd.DataFrame,
    champion_oos_file: Path | None,
    champion_id: str,
    horizon: int,
    sectors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """:func:`champion_comparison` against the stored file; a champion whose predictions are
    gone (pruned, moved) shares no rows, which the gate turns into "a person must judge"."""
    if champion_oos_file is None or not champion_oos_file.is_file():
        return {
            "champion": champion_id,
            "shared_rows": 0,
            "shared_sessions": 0,
            "candidate_rank_ic": None,
            "champion_rank_ic": None,
            "test": block_mean_test([], horizon),
            "p_value": None,
            "missing": str(champion_oos_file),
        }
    return champion_comparison(
        candidate_oos, pd.read_parquet(champion_oos_file), champion_id, horizon, sectors
    )
