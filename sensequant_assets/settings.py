"""Runtime configuration, read once from the environment (and `.env`).

Every field maps to one environment variable (``SENSEQUANT_<FIELD>`` unless an alias says
otherwise, e.g. the ``BREEZE_*`` credentials). A bad value stops start-up with a message that
names the variable, because a typo in a cron job's environment should fail loudly, not fall
back to a default. How a value is spelled, and the message a bad one becomes, are
:mod:`sensequant_assets.settings_parsing`.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.live.demotion import DEMOTION_SESSIONS
from sensequant_assets.live.staging import STAGING_SESSIONS
from sensequant_assets.settings_parsing import (
    OBJECT_STORE_SCHEMES,
    defect_kinds,
    error_message,
    http_url,
    registry_database,
    warehouse_uri,
)

ENV_PREFIX = "SENSEQUANT_"
EMBEDDED = "sqlite"
"""``SENSEQUANT_REGISTRY_URL`` value choosing the SQLite files under the home."""
DEFECT_KINDS = ("negative_volume", "broken_ohlc", "missing_days", "unadjusted_split")
MAX_SIGNAL_IC = 0.15
"""Highest planted-signal rank IC the synthetic source is calibrated for (docs/synthetic.md)."""


def _seed(name: str) -> AliasChoices:
    """Accept the seed's bare variable name as well as the prefixed one."""
    return AliasChoices(f"{ENV_PREFIX}{name}", name)


class SettingsError(ValueError):
    """Raised when the environment holds an invalid configuration."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    data_source: Literal["synthetic", "files", "breeze"] = "synthetic"
    home: Path = Field(default_factory=Path.cwd)
    files_dir: Path | None = None
    symbols: str | None = Field(
        default=None,
        description="Comma-separated symbol dimension of the partitions; default NIFTY 100 + ETFs.",
    )
    history_start: dt.date = Field(
        default=dt.date(2024, 1, 1),
        description="First trading-day partition; keep symbols × days under ~100k per asset.",
    )
    holiday_file: Path | None = None
    scrip_master: Path | None = Field(
        default=None, description="An NSEScripMaster.txt whose EQ rows extend the known symbols."
    )

    warehouse: Literal["duckdb", "delta"] = Field(
        default="duckdb",
        description="Curated tables: a local DuckDB file (one machine) or Delta tables (shared).",
    )
    warehouse_uri: str | None = Field(
        default=None,
        description="Root of the Delta tables: s3://bucket/prefix or a path; default data/delta.",
    )
    aws_region: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        validation_alias="AWS_ENDPOINT_URL",
        description="An S3-compatible endpoint (MinIO, a proxy); unset means AWS itself.",
    )
    aws_allow_http: bool = Field(default=False, validation_alias="AWS_ALLOW_HTTP")

    synthetic_seed: int = 7
    synthetic_signal_ic: float = Field(
        default=0.0,
        ge=0.0,
        le=MAX_SIGNAL_IC,
        description="Mean daily rank IC of the planted signal; 0 plants nothing.",
    )
    synthetic_defects: str = ""

    breeze_api_key: SecretStr | None = Field(default=None, validation_alias="BREEZE_API_KEY")
    breeze_api_secret: SecretStr | None = Field(default=None, validation_alias="BREEZE_API_SECRET")
    breeze_session_token: SecretStr | None = Field(
        default=None, validation_alias="BREEZE_SESSION_TOKEN"
    )
    breeze_base_url: str | None = Field(default=None, validation_alias="BREEZE_BASE_URL")
    breeze_chunk_candles: int = Field(default=1000, gt=0, le=1000)
    breeze_calls_per_minute: int = Field(default=100, gt=0)
    breeze_calls_per_day: int = Field(default=5000, gt=0)
    breeze_max_retries: int = Field(default=5, ge=0, le=20)
    breeze_backoff_seconds: float = Field(default=2.0, ge=0)
    breeze_backoff_max_seconds: float = Field(
        default=60.0, ge=0, description="Cap on one wait between retries (before jitter)."
    )
    breeze_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Bound on each SDK network call, the import-time security master included.",
    )
    breeze_refetch: bool = False
    allow_shrink: bool = Field(
        default=False, description="Let an ingest delete stored sessions its source no longer has."
    )
    allow_missing_sessions: bool = Field(
        default=False, description="Let an ingest mark NSE sessions with no source row as done."
    )

    corporate_actions_file: Path | None = Field(
        default=None,
        description="CSV symbol,ex_date,kind,ratio of splits and bonuses: training reads bars "
        "back-adjusted by them (quality/corporate_actions.py); stored bars stay as received.",
    )
    max_overnight_move: float = Field(
        default=1.0,
        gt=0,
        description="Largest |log(open or close / previous close)| an ingest accepts when no "
        "split, bonus or listed corporate action explains it (1.0: x2.72 or -63%).",
    )

    sentiment_headlines_file: Path | None = None

    label_horizon: int = Field(default=7, ge=1, description="Sessions ahead the label looks.")
    label_mode: Literal["fixed", "volatility"] = "volatility"
    label_reference: Literal["absolute", "market"] = Field(
        default="market",
        description="Label the forward return itself or its excess over the NIFTY 50 benchmark.",
    )
    label_threshold: float = Field(default=0.01, ge=0, description="Fixed-mode return threshold.")
    label_vol_multiplier: float = Field(default=0.5, ge=0)
    window_days: int = Field(default=180, gt=0, description="Teacher window, calendar days.")
    window_step_days: int = Field(default=30, gt=0)
    min_samples: int = Field(default=20, gt=0)
    distill_alpha: float = Field(default=0.5, ge=0, le=1)
    search_trials: int = Field(
        default=8,
        ge=1,
        le=32,
        description="Trials of the hyperparameter search a quarterly retrain (or a candidate "
        "run tagged sensequant/search=true) runs; each one counts in the DSR's N.",
    )

    risk_free_rate: float = Field(
        default=0.065, ge=0, lt=1, description="Annual risk-free rate for Sharpe and cash."
    )
    evaluation_strategy: Literal["long_flat", "long_short"] = Field(
        default="long_flat",
        description="The backtest the promotion gate judges; long_short needs "
        "SENSEQUANT_SHORT_COST_BP_ANNUAL.",
    )
    cost_round_trip_bp: float = Field(default=24.0, ge=0, description="NSE delivery ≈ 24 bp.")
    slippage_bp: float = Field(default=5.0, ge=0, description="Per side, on top of costs.")
    short_cost_bp_annual: float | None = Field(
        default=None,
        ge=0,
        description="Annual cost of holding a short (stock-borrow fee or single-stock futures "
        "carry), basis points; unset: no shorts are evaluated.",
    )
    walk_forward_folds: int = Field(default=5, ge=1, le=20)
    run_stress_tests: bool = False
    stress_windows_file: Path | None = None
    gate_significance: float = Field(default=0.01, gt=0, lt=1)
    gate_min_dsr: float = Field(default=0.5, ge=0, le=1)
    gate_min_resilience: float = Field(default=50.0, ge=0, le=100)
    gate_min_oos_sessions: int = Field(default=60, ge=1)

    promote_via_staging: bool = Field(
        default=False,
        description="Send an approved candidate to a staging trial (shadow scoring beside "
        "production) and promote it only once the trial holds up; unset: straight to production.",
    )
    staging_sessions: int = Field(
        default=STAGING_SESSIONS,
        ge=1,
        description="Live sessions a staged candidate scores in shadow before its trial is "
        "judged (on those whose labels have matured).",
    )
    allow_synthetic_promotion: bool = Field(
        default=False,
        description="Let a reviewer approve and stage a candidate trained on synthetic data "
        "(demos); production never takes one.",
    )
    candidate_auto_approve: bool = Field(
        default=False, validation_alias=_seed("CANDIDATE_AUTO_APPROVE")
    )
    candidate_approval_threshold: float = Field(
        default=0.95,
        ge=0,
        le=1,
        validation_alias=_seed("CANDIDATE_APPROVAL_THRESHOLD"),
        description="Auto-approval also needs the gate's DSR at or above this.",
    )

    reward_loop_enabled: bool = Field(default=False, validation_alias=_seed("REWARD_LOOP_ENABLED"))
    reward_horizon_days: int | None = Field(
        default=None, ge=1, validation_alias=_seed("REWARD_HORIZON_DAYS")
    )
    reward_clip_min: float = Field(default=-0.05, lt=0, validation_alias=_seed("REWARD_CLIP_MIN"))
    reward_clip_max: float = Field(default=0.05, gt=0, validation_alias=_seed("REWARD_CLIP_MAX"))
    reward_weighting_mode: Literal["linear", "exponential", "none"] = Field(
        default="linear", validation_alias=_seed("REWARD_WEIGHTING_MODE")
    )
    reward_weighting_scale: float = Field(
        default=1.0, gt=0, validation_alias=_seed("REWARD_WEIGHTING_SCALE")
    )
    reward_ab_testing_enabled: bool = Field(
        default=False, validation_alias=_seed("REWARD_AB_TESTING_ENABLED")
    )
    reward_decay: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="γ: a retrain's live rewards count γ^age beside this retrain's (age 0).",
    )
    reward_retrain_window: int = Field(
        default=10,
        ge=1,
        description="Retrains whose rewards weight a student, this one included (1: its own "
        "cross-fitted rewards only).",
    )

    registry_url: SecretStr | None = Field(
        default=None,
        description="Database of the candidate registry and the Breeze call ledger: a "
        "postgresql:// URL, or `sqlite` (files under the home); unset: the DAGSTER_PG_* "
        "database when DAGSTER_PG_HOST is set, else sqlite.",
    )
    demotion_sessions: int = Field(
        default=DEMOTION_SESSIONS,
        ge=1,
        description="Consecutive matured sessions the live rank IC must sit below its "
        "walk-forward band (or drift stay at ERROR) before production is rolled back.",
    )
    webhook_url: SecretStr | None = Field(
        default=None,
        description="A Slack-compatible incoming webhook told of candidates ready for review, "
        "approvals, deployments, demotions and failed runs; unset: no notifications.",
    )
    dagster_pg_host: str | None = Field(default=None, validation_alias="DAGSTER_PG_HOST")
    dagster_pg_port: int = Field(default=5432, gt=0, validation_alias="DAGSTER_PG_PORT")
    dagster_pg_user: str | None = Field(default=None, validation_alias="DAGSTER_PG_USER")
    dagster_pg_password: SecretStr | None = Field(
        default=None, validation_alias="DAGSTER_PG_PASSWORD"
    )
    dagster_pg_db: str | None = Field(default=None, validation_alias="DAGSTER_PG_DB")

    executor: Literal["in_process", "multiprocess", "dask", "k8s"] = Field(
        default="multiprocess",
        description="Where a launched run's steps execute (defs/executors.py); `dask` needs "
        "the `distributed` extra, `k8s` (one pod per step) the `k8s` extra.",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of an existing Dask scheduler (tcp://host:8786); unset: a "
        "LocalCluster per run.",
    )
    dask_workers: int = Field(default=2, ge=1, description="Worker processes of a LocalCluster.")
    run_workers: int = Field(
        default_factory=lambda: min(2, os.cpu_count() or 1),
        ge=1,
        le=32,
        description="Dagster runs historical-run, ingest and train issue at once (run_pool.py); "
        "1 runs them one by one in the command's process.",
    )

    @model_validator(mode="after")
    def _short_requirements(self) -> Settings:
        if self.evaluation_strategy == "long_short" and self.short_cost_bp_annual is None:
            raise ValueError(
                "SENSEQUANT_EVALUATION_STRATEGY=long_short needs a cost model for shorts: set "
                "SENSEQUANT_SHORT_COST_BP_ANNUAL (borrow fee or futures carry, bp a year)"
            )
        return self

    @model_validator(mode="after")
    def _executor_requirements(self) -> Settings:
        if self.dask_scheduler and self.executor != "dask":
            raise ValueError(
                f"SENSEQUANT_DASK_SCHEDULER is set but SENSEQUANT_EXECUTOR={self.executor}: "
                "set SENSEQUANT_EXECUTOR=dask to use the cluster"
            )
        return self

    @field_validator("registry_url")
    @classmethod
    def _registry_database(cls, value: SecretStr | None) -> SecretStr | None:
        return registry_database(value, EMBEDDED)

    @field_validator("synthetic_defects")
    @classmethod
    def _known_defects(cls, value: str) -> str:
        return defect_kinds(value, DEFECT_KINDS)

    @field_validator("breeze_base_url", "aws_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("warehouse_uri")
    @classmethod
    def _supported_uri(cls, value: str | None) -> str | None:
        return warehouse_uri(value)

    @model_validator(mode="after")
    def _warehouse_requirements(self) -> Settings:
        plain_http = (self.aws_endpoint_url or "").startswith("http://")
        if self.warehouse_on_object_store and plain_http and not self.aws_allow_http:
            raise ValueError(
                f"AWS_ENDPOINT_URL={self.aws_endpoint_url} is plain http: set "
                "AWS_ALLOW_HTTP=true (test and in-cluster endpoints only)"
            )
        return self

    @model_validator(mode="after")
    def _source_requirements(self) -> Settings:
        if self.data_source == "files":
            if self.files_dir is None:
                raise ValueError(
                    "SENSEQUANT_FILES_DIR must be set when SENSEQUANT_DATA_SOURCE=files"
                )
            if not self.files_dir.is_dir():
                raise ValueError(f"SENSEQUANT_FILES_DIR={self.files_dir} is not a directory")
        if self.data_source == "breeze":
            missing = [
                name
                for name, value in (
                    ("BREEZE_API_KEY", self.breeze_api_key),
                    ("BREEZE_API_SECRET", self.breeze_api_secret),
                    ("BREEZE_SESSION_TOKEN", self.breeze_session_token),
                )
                if value is None or not value.get_secret_value()
            ]
            if missing:
                raise ValueError(
                    f"SENSEQUANT_DATA_SOURCE=breeze needs {', '.join(missing)} to be set"
                )
        if self.reward_horizon_days not in (None, self.label_horizon):
            raise ValueError(
                f"REWARD_HORIZON_DAYS={self.reward_horizon_days} must equal "
                f"SENSEQUANT_LABEL_HORIZON={self.label_horizon}: rewards are scored on the "
                "label's forward return"
            )
        for name in ("holiday_file", "sentiment_headlines_file", "scrip_master"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{ENV_PREFIX}{name.upper()}={path} does not exist")
        return self

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every secret this configuration holds, for masking wherever text leaves the process
        (notifications); a database URL's password on its own as well as the whole URL."""
        values = [
            field.get_secret_value()
            for field in (getattr(self, name) for name in type(self).model_fields)
            if isinstance(field, SecretStr)
        ]
        for value in list(values):
            if "://" in value:
                password = sa.make_url(value).password
                values.append(str(password) if password else "")
        return tuple(v for v in values if v)

    @property
    def defects(self) -> tuple[str, ...]:
        return tuple(k for k in self.synthetic_defects.split(",") if k)

    @property
    def layout(self) -> ArtifactLayout:
        """Where the home's files are (:mod:`~sensequant_assets.artifacts` builds every path)."""
        return ArtifactLayout.of(self)

    @property
    def data_dir(self) -> Path:
        return self.layout.data_dir

    @property
    def state_database(self) -> sa.URL | None:
        """The Postgres database holding the registry and the call ledger; ``None``: each is
        an SQLite file under the home. An explicit ``SENSEQUANT_REGISTRY_URL`` wins; else the
        database of the production Dagster instance (deploy/dagster.yaml) when DAGSTER_PG_HOST
        is set, so both follow the instance: SQLite locks are unsafe on a shared volume."""
        if self.registry_url is not None:
            raw = self.registry_url.get_secret_value()
            return None if raw == EMBEDDED else sa.make_url(raw)
        if not self.dagster_pg_host:
            return None
        password = self.dagster_pg_password
        return sa.URL.create(
            "postgresql+psycopg2",
            username=self.dagster_pg_user,
            password=None if password is None else password.get_secret_value(),
            host=self.dagster_pg_host,
            port=self.dagster_pg_port,
            database=self.dagster_pg_db,
        )

    @property
    def ledger_location(self) -> Path | sa.URL:
        """Where the Breeze call ledger lives (see :attr:`state_database`)."""
        return self.state_database or self.layout.ledger_file

    @property
    def duckdb_path(self) -> Path:
        return self.layout.warehouse_file

    @property
    def warehouse_root(self) -> str:
        """Root of the Delta tables: an object-store URI as given, a local path made absolute."""
        uri = self.warehouse_uri or str(self.layout.delta_root)
        if uri.split("://", 1)[0].lower() in OBJECT_STORE_SCHEMES:
            return uri
        return str(Path(uri.removeprefix("file://")).expanduser().resolve())

    @property
    def warehouse_on_object_store(self) -> bool:
        return self.warehouse == "delta" and "://" in self.warehouse_root

    @property
    def object_store_options(self) -> dict[str, str]:
        """delta-rs storage options for an s3:// root, none of them secret.

        Credentials stay out of the settings on purpose: delta-rs reads ``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` (or a pod's web identity) from the
        process environment itself, so they never reach Dagster's config, a log or a manifest.
        """
        if not self.warehouse_on_object_store:
            return {}
        options = {"AWS_ALLOW_HTTP": str(self.aws_allow_http).lower()}
        if self.aws_region:
            options["AWS_REGION"] = self.aws_region
        if self.aws_endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.aws_endpoint_url
        return options

    @property
    def warehouse_location(self) -> str:
        """Where curated tables live, for messages: the DuckDB file or the Delta root."""
        return self.warehouse_root if self.warehouse == "delta" else str(self.duckdb_path)

    @property
    def raw_dir(self) -> Path:
        return self.layout.raw_dir

    @property
    def symbol_list(self) -> list[str] | None:
        if not self.symbols:
            return None
        return [s.strip().upper() for s in self.symbols.split(",") if s.strip()]


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one clear message.

    The partitions start at the earlier of ``SENSEQUANT_HISTORY_START`` and the start a run
    recorded in the home (``partition_history``), so every process on a home agrees on them.
    """
    # partition_history reads the home through artifacts.py, which imports this module
    from sensequant_assets.partition_history import widened

    try:
        return widened(Settings(**overrides))
    except ValidationError as exc:
        raise SettingsError(error_message(exc, Settings.model_fields, ENV_PREFIX)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return load_settings()
