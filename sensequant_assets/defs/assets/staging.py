"""Group ``staging``: the staging trial (with ``SENSEQUANT_PROMOTE_VIA_STAGING``).

* ``staging_model``: an approved candidate, verified, copied into ``data/models/staging/`` and
  smoke-tested. Launched by the promotion sensor with the ``sensequant/candidate`` tag.
* ``staging_signals`` (by trading day): its shadow calls each session, built as
  ``production_signals`` is.
* ``staging_trial`` (by trading day): the trial as of the session — the staged model's matured
  rank IC against the champion's on the same rows, the drift its checks recorded — judged by
  ``live.staging`` once ``SENSEQUANT_STAGING_SESSIONS`` sessions were scored. A final outcome
  is recorded once in the registry (where the promotion sensor reads it and, on ``promote``,
  launches ``production_model``) and written to ``staging_report.md`` beside the briefing.
"""

import dagster as dg

from sensequant_assets.defs.assets.promotion import DEPLOY_POOL, signals_asset, tagged_candidate
from sensequant_assets.defs.check_history import drift_by_session
from sensequant_assets.defs.partitions import sessions_of
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.live.notify import Notifier
from sensequant_assets.live.production import STAGING_SIGNALS_TABLE
from sensequant_assets.live.trial import conclude, run_trial
from sensequant_assets.registry import STAGING, StateManager
from sensequant_assets.release.deployment import (
    current_production,
    current_staging,
    deploy_to_staging,
)

GROUP = "staging"
TRIAL = "staging_trial"
OUTCOME_KEY, MODEL_KEY = "outcome", "model_id"
STAGED_BY = "promotion sensor"
TRIAL_BY = "staging trial"


@dg.asset(deps=["promotion_briefing"], group_name=GROUP, pool=DEPLOY_POOL)
def staging_model(
    context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
) -> dg.MaterializeResult:
    """The staged model: ``data/models/staging/<candidate>/`` and ``staging/CURRENT``."""
    candidate_id = tagged_candidate(context)
    training = evaluation.training
    layout = training.layout
    deployment = deploy_to_staging(layout, StateManager(layout.registry), candidate_id, STAGED_BY)
    champion = current_production(layout) or "nothing in production"
    sessions = training.settings.staging_sessions
    context.log.info(
        f"{candidate_id} staged and smoke-tested; it scores {sessions} session(s) in shadow "
        f"beside {champion} before its trial is judged"
    )
    delivery = Notifier.of(training.settings)(
        "staging_started", candidate_id, {"champion": champion, "sessions": sessions,
                                          "by": STAGED_BY}
    )  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate_id,
            "replaced": str(deployment.replaced_run_id),
            "notification": delivery.status,
        }
    )


def build_staging_assets(
    days: dg.TimeWindowPartitionsDefinition, storage_kind: str
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name=TRIAL,
        partitions_def=days,
        deps=[STAGING_SIGNALS_TABLE, "production_signals"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
    )
    def staging_trial(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> dg.MaterializeResult:
        """The staged model's trial as of the session: waiting, promote or stays."""
        training = evaluation.training
        layout, settings = training.layout, training.settings
        model_id = current_staging(layout)
        if model_id is None:
            raise dg.Failure("no model in staging: nothing on trial")
        registry = StateManager(layout.registry)
        if ended := registry.staging_outcome(model_id):
            context.log.info(f"{model_id}'s trial already ended in {ended}: not judged again")
            return dg.MaterializeResult(metadata={MODEL_KEY: model_id, OUTCOME_KEY: ended})
        candidate = registry.get_candidate_run(model_id)
        day = sessions_of(context.partition_keys)[-1]
        universe = training.universe
        symbols = universe.resolve(settings.symbol_list or universe.default_symbols)
        trial = run_trial(
            training, candidate, current_production(layout), day,
            drift_by_session(context.instance, STAGING_SIGNALS_TABLE, model_id), symbols,
            settings.staging_sessions, 4 * evaluation.config.costs.per_side_rate,
            evaluation.config.sectors,
        )  # fmt: skip
        verdict = trial.verdict
        why = "; ".join(verdict.reasons)
        context.log.info(f"{model_id} on {day}: {verdict.outcome}: {why}")
        if conclude(registry, candidate, trial, by=TRIAL_BY):
            Notifier.of(settings)("staging_result", model_id,
                                  {"outcome": verdict.outcome, "why": why})  # fmt: skip
        return dg.MaterializeResult(
            metadata={
                MODEL_KEY: model_id,
                OUTCOME_KEY: verdict.outcome,
                "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in verdict.reasons)),
                "staged_sessions": len(trial.staged_sessions),
                "figures": dg.MetadataValue.json(verdict.figures),
            }
        )

    return [signals_asset(STAGING, days, storage_kind, GROUP), staging_trial]
