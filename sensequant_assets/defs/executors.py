"""Which executor runs a launched run's steps, chosen by ``SENSEQUANT_EXECUTOR``.

The executor applies to runs launched from Dagit, the daemon or ``dagster job execute``; the
CLI's ``execute_in_process`` calls always run in-process. Every step of a ``dask`` or ``k8s``
run executes in another process (a Dask worker, a pod) that rebuilds the definitions from its
own environment, so those processes need the same ``SENSEQUANT_*`` variables as the run.
"""

import importlib

import dagster as dg

from sensequant_assets.settings import Settings, SettingsError

DISTRIBUTED_EXTRA = "pip install 'sensequant-assets[distributed]'"
K8S_EXTRA = "pip install 'sensequant-assets[k8s]'"


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The Definitions' executor; ``multiprocess`` keeps Dagster's default, so run config can
    still pick ``in_process`` for one run."""
    if settings.executor == "in_process":
        return dg.in_process_executor
    if settings.executor == "dask":
        base = _optional("dagster_dask", "dask_executor", "dask", DISTRIBUTED_EXTRA)
        return base.configured({"cluster": dask_cluster_config(settings)}, name="dask")
    if settings.executor == "k8s":
        # Left unconfigured: step pods inherit the K8sRunLauncher's image, env and volumes,
        # and run config (`execution: config:`, deploy/k8s/executor.yaml) can add limits.
        return _optional("dagster_k8s", "k8s_job_executor", "k8s", K8S_EXTRA)
    return dg.multi_or_in_process_executor


def dask_cluster_config(settings: Settings) -> dict[str, object]:
    """The dask executor's ``cluster`` selector: the named scheduler, else a LocalCluster."""
    if settings.dask_scheduler:
        return {"existing": {"address": settings.dask_scheduler}}
    # Worker processes, not threads: Dagster steps are not thread-safe. No dashboard: the
    # cluster lives for one run and the default port may be taken.
    return {
        "local": {
            "n_workers": settings.dask_workers,
            "processes": True,
            "dashboard_address": None,
        }
    }


def _optional(module: str, name: str, value: str, install: str) -> dg.ExecutorDefinition:
    """An executor from an optional extra, imported only when the setting asks for it."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise SettingsError(
            f"SENSEQUANT_EXECUTOR={value} needs {module.replace('_', '-')}, which is not "
            f"installed ({exc}): {install}"
        ) from exc
