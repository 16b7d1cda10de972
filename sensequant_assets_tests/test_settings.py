from pathlib import Path

import pytest

from sensequant_assets.settings import SettingsError, load_settings
from sensequant_assets.training.rewards import RewardConfig


def test_defaults_are_offline_synthetic(isolated_env: Path) -> None:
    settings = load_settings()
    assert settings.data_source == "synthetic"
    assert settings.duckdb_path == isolated_env / "data" / "sensequant.duckdb"
    assert settings.breeze_chunk_candles == 1000


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SENSEQUANT_DATA_SOURCE", "yahoo", "SENSEQUANT_DATA_SOURCE: Input should be"),
        ("SENSEQUANT_HISTORY_START", "2024-13-01", "SENSEQUANT_HISTORY_START"),
        ("SENSEQUANT_BREEZE_CHUNK_CANDLES", "-5", "SENSEQUANT_BREEZE_CHUNK_CANDLES"),
        ("SENSEQUANT_BREEZE_CHUNK_CANDLES", "5000", "less than or equal to 1000"),
        ("SENSEQUANT_BREEZE_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("SENSEQUANT_BREEZE_MAX_RETRIES", "50", "less than or equal to 20"),
        ("SENSEQUANT_BREEZE_BACKOFF_MAX_SECONDS", "-1", "SENSEQUANT_BREEZE_BACKOFF_MAX_SECONDS"),
        ("SENSEQUANT_SYNTHETIC_DEFECTS", "gremlins", "unknown defect kind"),
        ("SENSEQUANT_HOLIDAY_FILE", "/nonexistent.csv", "SENSEQUANT_HOLIDAY_FILE"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected) as info:
        load_settings()
    assert variable in str(info.value)


def test_shorts_need_a_cost_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().evaluation_strategy == "long_flat"
    monkeypatch.setenv("SENSEQUANT_EVALUATION_STRATEGY", "long_short")
    with pytest.raises(SettingsError, match="SENSEQUANT_SHORT_COST_BP_ANNUAL"):
        load_settings()
    monkeypatch.setenv("SENSEQUANT_SHORT_COST_BP_ANNUAL", "60")
    assert load_settings().short_cost_bp_annual == 60.0


def test_files_source_needs_a_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    with pytest.raises(SettingsError, match="SENSEQUANT_FILES_DIR must be set"):
        load_settings()


def test_breeze_needs_credentials_and_never_echoes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "breeze")
    monkeypatch.setenv("BREEZE_API_KEY", "key-that-must-stay-secret")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "BREEZE_API_SECRET" in str(info.value) and "BREEZE_SESSION_TOKEN" in str(info.value)
    assert "key-that-must-stay-secret" not in str(info.value)


def test_dotenv_file_is_read(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("SENSEQUANT_SYNTHETIC_SEED=123\nSENSEQUANT_SYNTHETIC_DEFECTS=all\n")
    settings = load_settings()
    assert settings.synthetic_seed == 123
    assert settings.defects == (
        "negative_volume",
        "broken_ohlc",
        "missing_days",
        "unadjusted_split",
    )


def test_seed_reward_names_are_accepted_and_errors_name_both_spellings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REWARD_LOOP_ENABLED", "true")
    monkeypatch.setenv("REWARD_WEIGHTING_MODE", "exponential")
    settings = load_settings()
    assert settings.reward_loop_enabled and settings.reward_weighting_mode == "exponential"
    monkeypatch.setenv("REWARD_CLIP_MIN", "0.3")
    with pytest.raises(SettingsError, match="SENSEQUANT_REWARD_CLIP_MIN or REWARD_CLIP_MIN"):
        load_settings()


def test_reward_horizon_must_match_the_label_horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARD_HORIZON_DAYS", "5")
    with pytest.raises(SettingsError, match="must equal SENSEQUANT_LABEL_HORIZON=7"):
        load_settings()


def test_the_reward_decay_and_window_reach_the_reward_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sensequant_assets.calendar import TradingCalendar
    from sensequant_assets.training.resources import Training
    from sensequant_assets.universe import load_universe

    def config() -> RewardConfig:
        return Training(load_settings(), load_universe(), TradingCalendar()).reward_config

    assert (config().decay, config().retrain_window) == (0.95, 10)  # the story's γ, 10 retrains
    monkeypatch.setenv("SENSEQUANT_REWARD_DECAY", "0.8")
    monkeypatch.setenv("SENSEQUANT_REWARD_RETRAIN_WINDOW", "4")
    assert (config().decay, config().retrain_window) == (0.8, 4)
    for value in ("0", "1.5"):
        monkeypatch.setenv("SENSEQUANT_REWARD_DECAY", value)
        with pytest.raises(SettingsError, match="SENSEQUANT_REWARD_DECAY"):
            load_settings()
    monkeypatch.setenv("SENSEQUANT_REWARD_DECAY", "1")
    monkeypatch.setenv("SENSEQUANT_REWARD_RETRAIN_WINDOW", "0")
    with pytest.raises(SettingsError, match="SENSEQUANT_REWARD_RETRAIN_WINDOW"):
        load_settings()


def test_the_registry_database_follows_the_postgres_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sensequant_assets.artifacts import ArtifactLayout
    from sensequant_assets.database import shown

    settings = load_settings()
    assert settings.state_database is None
    assert ArtifactLayout.of(settings).registry == settings.home / "data/registry/candidates.sqlite"
    assert settings.ledger_location == settings.home / "data/breeze_calls.sqlite"
    instance = {"DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_USER": "dagster",
                "DAGSTER_PG_PASSWORD": "s3cret-pw", "DAGSTER_PG_DB": "dagster"}  # fmt: skip
    for name, value in instance.items():
        monkeypatch.setenv(name, value)
    url = load_settings().state_database
    assert url is not None and (url.host, url.port, url.database) == (
        "db.internal",
        5432,
        "dagster",
    )
    assert url.password == "s3cret-pw" and "s3cret-pw" not in shown(url)
    assert ArtifactLayout.of(load_settings()).registry == load_settings().ledger_location == url
    monkeypatch.setenv("SENSEQUANT_REGISTRY_URL", "sqlite")
    assert load_settings().state_database is None
    monkeypatch.setenv("SENSEQUANT_REGISTRY_URL", "postgresql://reg:pw2@other/registry")
    assert load_settings().state_database.host == "other"  # type: ignore[union-attr]
    monkeypatch.setenv("SENSEQUANT_REGISTRY_URL", "mysql://reg:pw2@other/registry")
    with pytest.raises(SettingsError, match="SENSEQUANT_REGISTRY_URL: must be a postgresql") as e:
        load_settings()
    assert "pw2" not in str(e.value)
