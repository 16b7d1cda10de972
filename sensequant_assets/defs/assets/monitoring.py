"""Group ``monitoring``: how the production model holds up live (``live_scorecard``), and what
its matured calls earned (``live_rewards``, the reward loop's history).

The domain work is ``live.monitoring`` and ``live.rewards``; the demotion sensor
(``defs/sensors.py``) reads the scorecard this asset records.
"""

from typing import Any

import dagster as dg

from sensequant_assets.defs.partitions import sessions_of
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.live.monitoring import live_report
from sensequant_assets.live.rewards import record_live_rewards
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import current_production

GROUP = "monitoring"
SCORECARD = "live_scorecard"
REWARDS = "live_rewards"
REPORT_KEY = "scorecard"  # the metadata entry holding the whole report (the sensor reads it)


def build_monitoring_assets(days: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The deployed model watched by trading day: its scorecard and its rewards."""
    return [_scorecard_asset(days), _rewards_asset(days)]


def _scorecard_asset(days: dg.TimeWindowPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=days,
        deps=["production_signals"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
    )
    def live_scorecard(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> dg.MaterializeResult:
        """The production model's matured calls up to the session: rolling rank IC (sector-
        neutral, as the gate's), hit rate and net spread over 20 sessions, against the band
        its walk-forward implies for the same window."""
        training = evaluation.training
        model_id = current_production(training.layout)
        if model_id is None:
            raise dg.Failure("no model in production: nothing to score")
        day = sessions_of(context.partition_keys)[-1]
        cost = 4 * evaluation.config.costs.per_side_rate
        registry = StateManager(training.layout.registry, read_only=True)
        try:
            report = live_report(training, registry, model_id, day, cost, evaluation.config.sectors)
        except LookupError as error:
            raise dg.Failure(f"{model_id}: {error}") from None
        measures = report["measures"]
        context.log.info(
            f"{model_id} on {day}: {report['matured_sessions']} matured session(s); "
            + "; ".join(f"{name} {m['position']}" for name, m in measures.items())
        )
        return dg.MaterializeResult(
            metadata={
                "model_id": model_id,
                "matured_sessions": report["matured_sessions"],
                **_figures(measures),
                "rank_ic_history": dg.MetadataValue.md(_history_table(measures["rank_ic"])),
                REPORT_KEY: dg.MetadataValue.json(report),
            }
        )

    return live_scorecard


def _rewards_asset(days: dg.TimeWindowPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=REWARDS,
        partitions_def=days,
        deps=["production_signals"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
    )
    def live_rewards(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> dg.MaterializeResult:
        """The production calls whose labels matured by the session, rewarded (sign(call) ×
        forward return, clipped) and appended once each to ``data/reward_history/<SYMBOL>.jsonl``
        with the model that made them: what the next retrain's reward loop weights by."""
        days = sessions_of(context.partition_keys)
        report = record_live_rewards(evaluation.training, days[0], days[-1])
        context.log.info(
            f"as of {days[-1]}: {report['matured']} matured call(s), {report['written']} new "
            f"reward(s) recorded, {report['refused_in_sample']} refused as in-sample"
        )
        return dg.MaterializeResult(
            metadata={
                "calls_read": report["calls"],
                "matured": report["matured"],
                "written": report["written"],
                "refused_in_sample": report["refused_in_sample"],
                "models": dg.MetadataValue.json(report["models"]),
            }
        )

    return live_rewards


def _figures(measures: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, m in measures.items():
        band = m["band"]
        figures[f"{name}_rolling"] = dg.MetadataValue.float(
            float("nan") if m["rolling"] is None else m["rolling"]
        )
        figures[f"{name}_band"] = f"[{band['low']:+.4f}, {band['high']:+.4f}] ({band['window']})"
        figures[f"{name}_sessions_below_band"] = m["sessions_below_band"]
    return figures


def _history_table(measure: dict[str, Any]) -> str:
    """The rolling rank IC of the last 20 sessions beside its band, as Markdown."""
    band = measure["band"]
    lines = ["| session | rolling rank IC | band low | band high |", "|---|---|---|---|"]
    lines += [
        f"| {point['date']} | {point['value']:+.4f} | {band['low']:+.4f} | {band['high']:+.4f} |"
        for point in measure["history"][-20:]
    ]
    return "\n".join(lines)
