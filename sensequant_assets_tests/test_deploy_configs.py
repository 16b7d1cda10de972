"""The deployment files in deploy/ are checked against the schemas that will read them.

A typo in an instance file or an executor block only shows up when a cluster starts; these
tests make Dagster's own config schemas (core and dagster-k8s) read every file here instead.
"""

from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from sensequant_assets.settings import ENV_PREFIX, Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
INSTANCE_FILES = (DEPLOY / "dagster.yaml", DEPLOY / "k8s" / "dagster.yaml")
PG_ENV = {"DAGSTER_PG_HOST": "db", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "dagster",
          "DAGSTER_PG_PASSWORD": "secret", "DAGSTER_PG_DB": "dagster"}  # fmt: skip


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_instance_files_pass_dagsters_instance_schema(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text(path.read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["concurrency"]["pools"]["default_limit"] == 1
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        assert config[storage]["module"] == "sensequant_assets.pooled_postgres"
        database = config[storage]["config"]["postgres_db"]
        assert database["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # never a literal


def test_kubernetes_run_launcher_and_executor_configs_are_valid() -> None:
    launcher = _yaml(DEPLOY / "k8s" / "dagster.yaml")["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    checked = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    run_config = _yaml(DEPLOY / "k8s" / "executor.yaml")
    schema = k8s_job_executor.config_schema.as_field().config_type
    executor = process_config(schema, run_config["execution"]["config"])
    assert executor.success, executor.errors


def test_configmap_holds_only_settings_the_code_reads(tmp_path: Path) -> None:
    data = _yaml(DEPLOY / "k8s" / "configmap.yaml")["data"]
    known = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    ours = {key for key in data if key.startswith(ENV_PREFIX)}
    assert ours <= known, sorted(ours - known)
    settings = load_settings(
        **{
            key.removeprefix(ENV_PREFIX).lower(): value
            for key, value in data.items()
            if key in ours
        }
        | {"home": tmp_path, "data_source": "synthetic"}
    )
    assert settings.warehouse == "delta" and settings.warehouse_uri.startswith("s3://")


def test_helm_values_render_the_same_queue_and_monitoring_as_the_instance_file() -> None:
    values = _yaml(DEPLOY / "helm" / "values.yaml")
    instance = _yaml(DEPLOY / "k8s" / "dagster.yaml")
    daemon = values["dagsterDaemon"]
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert (
        queue["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    )
    monitoring = instance["run_monitoring"]
    assert (
        daemon["runMonitoring"]["freeSlotsAfterRunEndSeconds"]
        == monitoring["free_slots_after_run_end_seconds"]
    )
    assert daemon["runMonitoring"]["maxRuntimeSeconds"] == monitoring["max_runtime_seconds"]
    assert (
        values["concurrency"]["pools"]["defaultLimit"]
        == instance["concurrency"]["pools"]["default_limit"]
    )
    config_map = _yaml(DEPLOY / "k8s" / "configmap.yaml")["metadata"]["name"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert {"name": config_map} in launcher["envConfigMaps"]
    assert config_map in instance["run_launcher"]["config"]["env_config_maps"]
