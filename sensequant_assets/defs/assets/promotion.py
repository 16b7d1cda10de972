"""Group ``production``: the deployed model and what it says each session.

* ``production_model``: an approved candidate, verified and copied into production. Launched
  by the promotion sensor with the candidate's id as the ``sensequant/candidate`` tag (or by
  hand in Dagit with that tag); with ``SENSEQUANT_PROMOTE_VIA_STAGING`` only once its staging
  trial (group ``staging``, ``defs.assets.staging``) recorded ``promote``. The domain work is
  ``release.deployment``.
* ``production_signals`` (by trading day): the live model's calls for every symbol, stored in
  the warehouse, and the drift of the features and score over the window up to each session
  against the student's training rows; the domain work is ``live.production`` and
  ``live.drift``. :func:`signals_asset` builds ``staging_signals`` the same way.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from sensequant_assets.defs.checks import (
    drift_check_results,
    model_check_result,
    signal_check_results,
    signal_check_specs,
)
from sensequant_assets.defs.partitions import sessions_of
from sensequant_assets.defs.tags import CandidateScope
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.live.notify import Notifier
from sensequant_assets.live.production import (
    STAGE_TABLES,
    DeployedModel,
    NoDeployedModel,
    ScoredSessions,
    deployed_model,
    score_sessions,
)
from sensequant_assets.live.signals import SIGNAL_COLUMNS, SIGNAL_TYPES
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.lifecycle import PRODUCTION
from sensequant_assets.release.deployment import TrialNotPassed, deploy_to_production

GROUP = "production"

PROMOTED_BY = "promotion sensor"
DEPLOY_POOL = "production_deploy"
"""One ``production_model`` step at a time across runs (pools default to a limit of 1 in the
instance files); ``release.deploy_lock`` serializes it with a person's rollback too."""


def tagged_candidate(context: dg.AssetExecutionContext) -> str:
    """The candidate a deployment run names by its ``sensequant/candidate`` tag."""
    candidate_id = CandidateScope.from_tags(context.run.tags).candidate_id
    if not candidate_id:
        name = context.asset_key.to_user_string()
        raise dg.Failure(f"launch {name} with the tag sensequant/candidate=<run id>")
    return candidate_id


@dg.asset(deps=["promotion_briefing"], group_name=GROUP, pool=DEPLOY_POOL)
def production_model(
    context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
) -> dg.MaterializeResult:
    """The live model: ``data/models/production/<candidate>/`` and ``production/CURRENT``."""
    candidate_id = tagged_candidate(context)
    layout = evaluation.training.layout
    registry = StateManager(layout.registry)
    try:
        deployment = deploy_to_production(
            layout, registry, candidate_id, by=PROMOTED_BY,
            after_trial=evaluation.training.settings.promote_via_staging,
        )  # fmt: skip
    except TrialNotPassed as untried:
        raise dg.Failure(str(untried)) from None
    context.log.info(
        f"{candidate_id} is live in production"
        + (f", replacing {deployment.replaced_run_id}" if deployment.replaced_run_id else "")
    )
    delivery = Notifier.of(evaluation.training.settings)(
        "deployed", candidate_id, {"replaced": deployment.replaced_run_id or "nothing",
                                   "by": PROMOTED_BY}
    )  # fmt: skip
    context.log.info(f"notification: {delivery.status} {delivery.detail}")
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate_id,
            "notification": delivery.status,
            "replaced": str(deployment.replaced_run_id),
            "path": dg.MetadataValue.path(
                str(layout.deployed_bundle(layout.production_dir, candidate_id))
            ),
        }
    )


def build_signal_assets(
    days: dg.TimeWindowPartitionsDefinition, storage_kind: str
) -> list[dg.AssetsDefinition]:
    return [signals_asset(PRODUCTION, days, storage_kind, GROUP)]


def _scored(evaluation: Evaluation, model: DeployedModel, days: list[dt.date]) -> ScoredSessions:
    """The model's calls on every configured symbol over ``days``."""
    training = evaluation.training
    universe = training.universe
    symbols = universe.resolve(training.settings.symbol_list or universe.default_symbols)
    return score_sessions(model, training.warehouse, training.calendar, symbols, days)


def signals_asset(
    stage: str, days: dg.TimeWindowPartitionsDefinition, storage_kind: str, group: str
) -> dg.AssetsDefinition:
    """A stage's signals (``production_signals``, or ``staging_signals``: the staged model's
    shadow calls in the same shape, for the staging trial)."""
    table = STAGE_TABLES[stage]
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, SIGNAL_TYPES[name]) for name in SIGNAL_COLUMNS]
    )

    @dg.asset(
        name=table,
        partitions_def=days,
        deps=[
            dg.AssetDep(
                "ohlcv_daily",
                partition_mapping=dg.MultiToSingleDimensionPartitionMapping("date"),
            )
        ],
        metadata={"partition_expr": "date", "dagster/column_schema": schema},
        check_specs=signal_check_specs(table),
        # one run scores a range of sessions, as the scorecard after it reads them
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="warehouse_io_manager",
        group_name=group,
        kinds={storage_kind, "pandas"},
        description=f"The {stage} model's call for every symbol on each session: class "
        "probabilities, score P(up) − P(down), call (−1/0/+1), from features of bars up to "
        "that session.",
    )
    def signals(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        training = evaluation.training
        registry = StateManager(training.layout.registry, read_only=True)
        try:
            model = deployed_model(training.layout, registry, stage)
        except NoDeployedModel as missing:
            raise dg.Failure(str(missing)) from None
        except ModelIntegrityError as tampered:
            yield model_check_result(table, False, error=str(tampered))
            raise dg.Failure(f"{stage} model refused: {tampered}") from None
        yield model_check_result(table, True, model_id=model.model_id, model_sha256=model.sha256)
        days = sessions_of(context.partition_keys)
        run = _scored(evaluation, model, days)
        context.log.info(
            f"{len(days)} session(s) {days[0]}..{days[-1]}: {run.summary['scored']} of "
            f"{run.summary['universe']} symbol-sessions scored by {model.model_id} ({stage})"
        )
        yield dg.Output(run.signals, metadata={"model_id": model.model_id, "sessions": len(days),
                        **{k: run.summary[k] for k in ("scored", "long", "short")}})  # fmt: skip
        yield from signal_check_results(table, run.summary)
        yield from drift_check_results(table, run.drift, model.model_id)

    return signals
