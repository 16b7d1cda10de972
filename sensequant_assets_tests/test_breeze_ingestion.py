"""ohlcv_daily from Breeze: the real SDK against the fake server, driven by Dagster."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pytest

from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.fake_breeze import FakeBreeze
from sensequant_assets_tests.test_market_data_assets import checks, run_job, stored

KEY, SECRET, TOKEN = "asset-test-key-7777", "asset-test-secret-8888", "11223344"
TAGS = one_symbol_range_tags("RELIANCE", dt.date(2024, 1, 1), dt.date(2024, 3, 28))


@pytest.fixture
def breeze_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBreeze]:
    with FakeBreeze(api_key=KEY, api_secret=SECRET, session_token=TOKEN) as fake:
        monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "breeze")
        monkeypatch.setenv("BREEZE_API_KEY", KEY)
        monkeypatch.setenv("BREEZE_API_SECRET", SECRET)
        monkeypatch.setenv("BREEZE_SESSION_TOKEN", TOKEN)
        monkeypatch.setenv("BREEZE_BASE_URL", fake.base_url)
        yield fake


def test_breeze_ingestion_stores_bars_and_reruns_cost_no_calls(breeze_env: FakeBreeze) -> None:
    settings = load_settings()
    with dg.DagsterInstance.ephemeral() as instance:
        first = run_job(settings, instance, OHLCV_JOB, TAGS)
        assert first.success and all(checks(first).values())
        assert len(breeze_env.history_calls()) == 1
        rows = stored(settings)
        assert set(rows["source"]) == {"breeze"} and len(rows) > 55

        again = run_job(settings, instance, OHLCV_JOB, TAGS)
        assert again.success
        assert len(breeze_env.history_calls()) == 1  # served from the warehouse
        materialization = again.asset_materializations_for_node("ohlcv_daily")[0]
        assert materialization.metadata["reused_stored_rows"].value == len(rows)
        assert len(stored(settings)) == len(rows)

        logged = " ".join(
            str(record.user_message) + str(record.dagster_event)
            for run in (first, again)
            for record in instance.all_logs(run.run_id)
        )
    for secret in (KEY, SECRET, TOKEN):
        assert secret not in logged


def test_refetch_setting_forces_new_calls(
    breeze_env: FakeBreeze, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENSEQUANT_BREEZE_REFETCH", "true")
    settings = load_settings()
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_job(settings, instance, OHLCV_JOB, TAGS).success
        assert run_job(settings, instance, OHLCV_JOB, TAGS).success
    assert len(breeze_env.history_calls()) == 2


def test_expired_session_fails_the_run_with_refresh_instructions(
    breeze_env: FakeBreeze,
) -> None:
    breeze_env.expired = True
    settings = load_settings()
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_job(settings, instance, OHLCV_JOB, TAGS)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "RELIANCE" in message and "BREEZE_SESSION_TOKEN" in message
    assert TOKEN not in message
