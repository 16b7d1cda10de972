"""``production_model``: an approved candidate, verified and copied into production.

Launched by the promotion sensor with the candidate's id as the ``sensequant/candidate`` tag
(or by hand in Dagit with that tag); the domain work is ``release.deployment``.
"""

import dagster as dg

from sensequant_assets.defs.tags import CandidateScope
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import deploy_to_production, deploy_to_staging

PROMOTED_BY = "promotion sensor"
DEPLOY_POOL = "production_deploy"
"""One ``production_model`` step at a time across runs (pools default to a limit of 1 in the
instance files); ``release.deploy_lock`` serializes it with a person's rollback too."""


@dg.asset(deps=["promotion_briefing"], group_name="production", pool=DEPLOY_POOL)
def production_model(
    context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
) -> dg.MaterializeResult:
    """The live model: ``data/models/production/<candidate>/`` and ``production/CURRENT``."""
    candidate_id = CandidateScope.from_tags(context.run.tags).candidate_id
    if not candidate_id:
        raise dg.Failure("launch production_model with the tag sensequant/candidate=<run id>")
    layout = evaluation.training.layout
    registry = StateManager(layout.registry)
    if evaluation.training.settings.promote_via_staging:
        deploy_to_staging(layout, registry, candidate_id, by=PROMOTED_BY)
        context.log.info(f"{candidate_id} staged and smoke-tested in {layout.staging_dir}")
    deployment = deploy_to_production(layout, registry, candidate_id, by=PROMOTED_BY)
    context.log.info(
        f"{candidate_id} is live in production"
        + (f", replacing {deployment.replaced_run_id}" if deployment.replaced_run_id else "")
    )
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate_id,
            "replaced": str(deployment.replaced_run_id),
            "path": dg.MetadataValue.path(
                str(layout.deployed_bundle(layout.production_dir, candidate_id))
            ),
        }
    )
