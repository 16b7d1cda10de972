"""The Delta warehouse: real Dagster runs into real Delta tables, on a path and on S3 (moto).

The same runs go through the DuckDB backend for comparison: whichever backend is configured,
the warehouse reads (training, ingestion dedupe, last close) must see the same rows.
"""

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pandas as pd
import pytest
from deltalake import DeltaTable
from moto.server import ThreadedMotoServer

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import BENCHMARK_JOB, OHLCV_JOB, SENTIMENT_JOB, TEACHER_JOB
from sensequant_assets.defs.partitions import (
    date_range_tags,
    one_day_all_symbols_tags,
    one_symbol_range_tags,
)
from sensequant_assets.orchestration.historical import HistoricalRequest, prepare
from sensequant_assets.release.lineage import public_configuration
from sensequant_assets.settings import Settings, SettingsError, load_settings
from sensequant_assets.storage import DeltaWarehouse, Warehouse

SYMBOLS = ["INFY", "RELIANCE", "TCS"]
JAN = (dt.date(2024, 1, 1), dt.date(2024, 1, 31))
UPDATE_DAY = dt.date(2024, 2, 1)
# each symbol's own day: a mid-month one, one before RELIANCE's first row, one before any row
LAST_CLOSE_DAYS = {
    "TCS": dt.date(2024, 1, 15),
    "RELIANCE": dt.date(2024, 1, 31),
    "INFY": dt.date(2024, 1, 1),
    "SBIN": dt.date(2024, 1, 15),
}
HEADLINES = """Date,Symbol,Headline
2024-01-02,TCS,TCS shares surge after record profit and strong guidance
2024-01-03,TCS,TCS slumps as weak demand and layoffs hurt outlook
2024-01-04,INFY,Infosys wins a large deal
"""
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "AWS_PROFILE",
)


@pytest.fixture(autouse=True)
def no_aws_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared fixture leaves AWS_* alone; a developer's real credentials must not leak in."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def configure(monkeypatch: pytest.MonkeyPatch, warehouse: str) -> Settings:
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", ",".join(SYMBOLS))
    monkeypatch.setenv("SENSEQUANT_WAREHOUSE", warehouse)
    return load_settings()


def run(
    settings: Settings, instance: dg.DagsterInstance, job: str, tags: dict[str, str]
) -> dg.ExecuteInProcessResult:
    result = (
        build_defs(settings)
        .resolve_job_def(job)
        .execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def ingest_both_shapes(settings: Settings, instance: dg.DagsterInstance) -> None:
    """One symbol × many days (twice: a re-run), then one day × every symbol, twice each."""
    for symbol in ("INFY", "TCS", "INFY"):
        run(settings, instance, OHLCV_JOB, one_symbol_range_tags(symbol, *JAN))
    for day in (UPDATE_DAY, JAN[1], UPDATE_DAY):
        run(settings, instance, OHLCV_JOB, one_day_all_symbols_tags(day, SYMBOLS))
    for _ in range(2):
        run(settings, instance, BENCHMARK_JOB, date_range_tags(JAN[0], UPDATE_DAY))


def reads(warehouse: Warehouse) -> dict[str, object]:
    """Every kind of read the pipeline makes, as plain values to compare across backends."""
    return {
        "all": warehouse.symbols_bars("ohlcv_daily", SYMBOLS),
        "bounded": warehouse.symbols_bars("ohlcv_daily", ["TCS"], "2024-01-10", JAN[1]),
        "bars": warehouse.bars("ohlcv_daily", "INFY", dt.date(2024, 1, 8), dt.date(2024, 1, 19)),
        "benchmark": warehouse.bars("nifty50_benchmark", "NIFTY50", *JAN),
        "last_dates": [warehouse.last_date("ohlcv_daily", s) for s in SYMBOLS],
        "last_closes": warehouse.last_closes_before("ohlcv_daily", LAST_CLOSE_DAYS),
        "missing_table": warehouse.query("no_such_table", "true", []),
        "missing_symbol": warehouse.last_date("ohlcv_daily", "SBIN"),
    }


def delta_frame(settings: Settings, table: str) -> pd.DataFrame:
    uri = f"{settings.warehouse_root}/market/{table}"
    return DeltaTable(uri, storage_options=settings.object_store_options).to_pandas()


@pytest.mark.slow
def test_delta_on_a_path_matches_duckdb_for_both_run_shapes(
    monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance
) -> None:
    delta = configure(monkeypatch, "delta")
    ingest_both_shapes(delta, instance)
    assert not delta.duckdb_path.exists()
    stored = delta_frame(delta, "ohlcv_daily")
    assert not stored.duplicated(["symbol", "date"]).any()
    # INFY and TCS over January, then Jan 31 (RELIANCE is new) and Feb 1 for every symbol
    assert stored.groupby("symbol").size().to_dict() == {"INFY": 22, "RELIANCE": 2, "TCS": 22}
    schema = DeltaTable(f"{delta.warehouse_root}/market/ohlcv_daily").schema()
    assert {f.name: f.type.type for f in schema.fields}["date"] == "timestamp_ntz"
    assert (stored["date"] == stored["date"].dt.normalize()).all()  # naive trading dates
    assert len(delta_frame(delta, "nifty50_benchmark")) == 22

    duck = configure(monkeypatch, "duckdb")
    ingest_both_shapes(duck, instance)
    from_delta, from_duckdb = (reads(Warehouse.from_settings(s)) for s in (delta, duck))
    assert isinstance(Warehouse.from_settings(delta), DeltaWarehouse)
    for name, expected in from_duckdb.items():
        got = from_delta[name]
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(got, expected, obj=name)
        else:
            assert got == expected, name
    assert len(from_delta["all"]) == len(stored)
    # one query, yet each symbol's last close strictly before its own day (None without one)
    every = from_duckdb["all"]
    expected_closes = {}
    for symbol, day in LAST_CLOSE_DAYS.items():
        before = every[(every["symbol"] == symbol) & (every["date"] < pd.Timestamp(day))]
        expected_closes[symbol] = float(before["close"].iloc[-1]) if len(before) else None
    assert from_duckdb["last_closes"] == expected_closes
    assert expected_closes["RELIANCE"] is None and expected_closes["TCS"] is not None


def test_sentiment_slices_are_replaced_and_emptied_like_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance
) -> None:
    headlines = tmp_path / "headlines.csv"
    monkeypatch.setenv("SENSEQUANT_SENTIMENT_HEADLINES_FILE", str(headlines))
    tcs = one_symbol_range_tags("TCS", dt.date(2024, 1, 1), dt.date(2024, 1, 12))
    infy = one_symbol_range_tags("INFY", dt.date(2024, 1, 1), dt.date(2024, 1, 12))
    tables = {}
    for backend in ("delta", "duckdb"):
        headlines.write_text(HEADLINES)
        settings = configure(monkeypatch, backend)
        for tags in (tcs, infy, tcs):
            run(settings, instance, SENTIMENT_JOB, tags)
        warehouse = Warehouse.from_settings(settings)
        assert len(warehouse.query("sentiment_snapshots", "true", [])) == 3
        headlines.write_text(HEADLINES.replace("TCS,", "WIPRO,"))  # TCS loses its headlines
        run(settings, instance, SENTIMENT_JOB, tcs)
        tables[backend] = warehouse.query("sentiment_snapshots", "true", [])
    assert set(tables["delta"]["symbol"]) == {"INFY"}
    pd.testing.assert_frame_equal(tables["delta"], tables["duckdb"])


def test_io_manager_loads_a_partition_and_reads_need_no_table(
    monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance
) -> None:
    settings = configure(monkeypatch, "delta")
    warehouse = Warehouse.from_settings(settings)
    assert warehouse.last_date("ohlcv_daily", "INFY") is None
    assert warehouse.bars("ohlcv_daily", "INFY", *JAN).empty
    run(settings, instance, OHLCV_JOB, one_symbol_range_tags("INFY", dt.date(2024, 1, 8), JAN[1]))
    assert warehouse.last_date("ohlcv_daily", "INFY") == JAN[1]  # the cached table refreshes
    loaded = build_defs(settings).load_asset_value(
        "ohlcv_daily", partition_key="2024-01-15|INFY", instance=instance
    )
    assert list(loaded["date"].dt.date) == [dt.date(2024, 1, 15)]
    assert list(loaded["symbol"]) == ["INFY"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SENSEQUANT_WAREHOUSE", "postgres", "SENSEQUANT_WAREHOUSE: Input should be 'duckdb' or"),
        ("SENSEQUANT_WAREHOUSE_URI", "gs://bucket/x", "must be an s3:// URI or a local path"),
        ("AWS_ENDPOINT_URL", "localhost:9000", "must start with http:// or https://"),
    ],
)
def test_bad_warehouse_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected) as info:
        load_settings()
    assert variable in str(info.value)


def test_plain_http_endpoint_needs_allow_http_only_for_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_WAREHOUSE", "delta")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000")
    assert load_settings().object_store_options == {}  # a local root ignores the endpoint
    monkeypatch.setenv("SENSEQUANT_WAREHOUSE_URI", "s3://bucket/prefix/")
    with pytest.raises(SettingsError, match="set AWS_ALLOW_HTTP=true"):
        load_settings()
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    settings = load_settings()
    assert settings.warehouse_root == "s3://bucket/prefix"
    assert settings.object_store_options == {
        "AWS_ALLOW_HTTP": "true",
        "AWS_ENDPOINT_URL": "http://minio:9000",
    }


def test_default_backend_is_the_duckdb_file(isolated_env: Path) -> None:
    settings = load_settings()
    warehouse = Warehouse.from_settings(settings)
    assert type(warehouse) is Warehouse and warehouse.path == settings.duckdb_path
    assert settings.warehouse_root == str(isolated_env / "data" / "delta")


def s3_client(endpoint: str) -> Any:  # boto3's client classes are generated at run time
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def test_a_dry_run_never_writes_to_the_configured_object_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENSEQUANT_WAREHOUSE", "delta")
    monkeypatch.setenv("SENSEQUANT_WAREHOUSE_URI", "s3://production/warehouse")
    request = HistoricalRequest(("TCS",), dt.date(2024, 1, 1), dt.date(2024, 6, 28), dryrun=True)
    _, settings = prepare(request, load_settings())
    assert settings.warehouse == "delta" and settings.object_store_options == {}
    assert Path(settings.warehouse_root).is_relative_to(settings.home / "data")
    assert "dryrun" in settings.warehouse_root


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A moto S3 server on 127.0.0.1 with an empty bucket; yields (bucket, secret key)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    secret = f"moto-secret-{uuid.uuid4().hex}"
    bucket = "sensequant-test"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    s3_client(endpoint).create_bucket(Bucket=bucket)
    try:
        yield bucket, secret
    finally:
        server.stop()


@pytest.mark.slow
def test_s3_warehouse_ingests_trains_and_keeps_credentials_out(
    monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance, s3_bucket: tuple[str, str]
) -> None:
    bucket, secret = s3_bucket
    monkeypatch.setenv("SENSEQUANT_WAREHOUSE_URI", f"s3://{bucket}/sensequant")
    settings = configure(monkeypatch, "delta")
    history = (dt.date(2024, 1, 1), dt.date(2025, 4, 4))
    run(settings, instance, OHLCV_JOB, one_symbol_range_tags("INFY", *history))
    run(settings, instance, OHLCV_JOB, one_symbol_range_tags("INFY", *history))
    run(settings, instance, BENCHMARK_JOB, date_range_tags(*history))

    keys = [
        o["Key"]
        for page in s3_client(settings.aws_endpoint_url or "")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    for table in ("ohlcv_daily", "nifty50_benchmark"):
        prefix = f"sensequant/market/{table}/"
        assert f"{prefix}_delta_log/00000000000000000000.json" in keys
        assert any(k.startswith(prefix) and k.endswith(".parquet") for k in keys)
    assert not settings.duckdb_path.exists()

    warehouse = Warehouse.from_settings(settings)
    bars = warehouse.bars("ohlcv_daily", "INFY", *history)
    assert len(bars) == len(delta_frame(settings, "ohlcv_daily")) > 300
    assert not bars.duplicated(["date"]).any()
    assert warehouse.last_date("nifty50_benchmark", "NIFTY50") == history[1]

    window = "INFY|2024-03-13_to_2024-09-08"
    tags = {
        "dagster/asset_partition_range_start": window,
        "dagster/asset_partition_range_end": window,
    }
    run(settings, instance, TEACHER_JOB, tags)
    record = ArtifactLayout(settings.home).teacher_dir("INFY_2024-03-13_to_2024-09-08")
    assert json.loads((record / "metadata.json").read_text())["status"] == "completed"

    io_manager = build_defs(settings).resources["warehouse_io_manager"]
    assert secret not in json.dumps(io_manager.model_dump(), default=str)
    assert secret not in json.dumps(public_configuration(settings))
    logs = [str(e) for r in instance.get_runs() for e in instance.all_logs(r.run_id)]
    assert logs and not any(secret in line for line in logs)
    written = [p for p in settings.home.rglob("*") if p.is_file()]
    assert written and not any(secret.encode() in p.read_bytes() for p in written)
