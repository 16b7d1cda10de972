"""Market-data assets (group ``market_data``): OHLCV, the NIFTY 50 benchmark, sentiment."""

from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from sensequant_assets.defs.checks import (
    BENCHMARK_CHECKS,
    SENTIMENT_CHECKS,
    check_results,
    check_specs,
    freshness_checks,
    sentiment_check_result,
)
from sensequant_assets.defs.partitions import sessions_by_symbol, sessions_of
from sensequant_assets.defs.tags import ingest_policy
from sensequant_assets.defs.types import OhlcvBars
from sensequant_assets.features import sentiment
from sensequant_assets.quality.contract import BAR_DTYPES
from sensequant_assets.sources.ingest import IngestResult, MarketData, PriceChecks, format_sessions
from sensequant_assets.universe import INDEX_SYMBOL

GROUP = "market_data"


def _columns(*columns: tuple[str, str]) -> dict[str, Any]:
    """A table's columns (pandas dtypes, as stored) as the asset's definition metadata: Dagit
    shows them once, instead of a copy in every partition's materialization event."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])
    return {"dagster/column_schema": schema}


BAR_COLUMNS = _columns(*BAR_DTYPES.items())
SENTIMENT_COLUMNS = _columns(
    ("date", "datetime64[ns]"),
    ("symbol", "object"),
    ("sentiment_score", "float64"),
    ("headline_count", "int64"),
)


def _progress(context: dg.AssetExecutionContext) -> Callable[[int, int, str], None]:
    def report(done: int, total: int, symbol: str) -> None:
        if done == total or done % max(1, total // 10) == 0:
            context.log.info(f"ingested {done}/{total} symbols (last: {symbol})")

    return report


def _emit(
    context: dg.AssetExecutionContext,
    asset_key: str,
    result: IngestResult,
    market_data: MarketData,
    checks: tuple[str, ...] | None = None,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Yield the output and check results, or fail the run when any symbol failed."""
    results = check_results(asset_key, result.findings, checks, context.partition_keys)
    if result.failures:
        yield from (r for r in results if r.check_name == "valid_rows" and not r.passed)
        raise dg.Failure(
            description=result.failure_message(),
            metadata={"failed_symbols": ", ".join(sorted(result.failures))},
        )
    frame = result.frame
    metadata: dict[str, Any] = {
        "rows": len(frame),
        "symbols": frame["symbol"].nunique() if len(frame) else 0,
        "source": market_data.source.name,
        "raw_file": str(result.raw_file) if result.raw_file else "",
        "reused_stored_rows": sum(result.reused_rows.values()),
        "corrections": sum(len(r.corrections) for r in result.reports),
        "warnings": sum(len(r.warnings) for r in result.reports),
    }
    gaps = result.missing_sessions
    if gaps:
        metadata["missing_sessions"] = sum(len(days) for days in gaps.values())
        for symbol, days in sorted(gaps.items()):
            context.log.warning(
                f"{symbol}: no source row for {len(days)} session(s), marked done as allowed: "
                f"{format_sessions(days)}"
            )
    if len(frame):
        metadata["first_date"] = str(frame["date"].min().date())
        metadata["last_date"] = str(frame["date"].max().date())
        note = market_data.calendar.horizon_note(frame["date"].max().date())
        if note:
            context.log.warning(note)
            metadata["calendar_fallback"] = note
    yield dg.Output(frame, metadata=metadata)
    yield from results


def build_market_data_assets(
    symbol_days: dg.MultiPartitionsDefinition,
    days: dg.TimeWindowPartitionsDefinition,
    pool: str | None,
    sentiment_enabled: bool,
    storage_kind: str = "duckdb",
) -> list[dg.AssetsDefinition]:
    """The market-data assets and their freshness checks; ``storage_kind`` (``duckdb`` or
    ``deltalake``) labels them in Dagit."""
    symbols = symbol_days.get_partitions_def_for_dimension("symbol").get_partition_keys()
    assets = [
        _ohlcv_asset(symbol_days, pool, storage_kind),
        _benchmark_asset(days, pool, storage_kind),
        *freshness_checks(symbols),
    ]
    if sentiment_enabled:
        assets.append(_sentiment_asset(symbol_days, storage_kind))
    return assets


def _ohlcv_asset(
    symbol_days: dg.MultiPartitionsDefinition, pool: str | None, storage_kind: str
) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=symbol_days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata={"partition_expr": {"date": "date", "symbol": "symbol"}, **BAR_COLUMNS},
        check_specs=check_specs("ohlcv_daily"),
        io_manager_key="warehouse_io_manager",
        dagster_type=OhlcvBars,
        group_name=GROUP,
        kinds={storage_kind, "pandas"},
        pool=pool,
    )
    def ohlcv_daily(
        context: dg.AssetExecutionContext, market_data: dg.ResourceParam[MarketData]
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        """Daily OHLCV per NSE symbol and trading day, validated by the guardrails.

        Rows as received are archived under ``data/raw/ohlcv_daily/`` before validation;
        dates are stored as naive trading dates (Asia/Kolkata).
        """
        wanted = sessions_by_symbol(context.partition_keys)
        context.log.info(
            f"ingesting {len(context.partition_keys)} partition(s): {len(wanted)} symbol(s) "
            f"from {market_data.source.name}"
        )
        policy = ingest_policy(context.run.tags, market_data.ingest_policy)
        result = market_data.ingestor("ohlcv_daily", policy).run(
            wanted,
            context.run.run_id,
            progress=_progress(context),
            checks=PriceChecks.from_settings(market_data.settings),
        )
        yield from _emit(context, "ohlcv_daily", result, market_data)

    return ohlcv_daily


def _benchmark_asset(
    days: dg.TimeWindowPartitionsDefinition, pool: str | None, storage_kind: str
) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata={"partition_expr": "date", **BAR_COLUMNS},
        check_specs=check_specs("nifty50_benchmark", BENCHMARK_CHECKS),
        io_manager_key="warehouse_io_manager",
        group_name=GROUP,
        kinds={storage_kind, "pandas"},
        pool=pool,
    )
    def nifty50_benchmark(
        context: dg.AssetExecutionContext, market_data: dg.ResourceParam[MarketData]
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        """Daily NIFTY 50 index bars: the benchmark for alpha, beta and 60/40 baselines."""
        sessions = sessions_of(context.partition_keys)
        policy = ingest_policy(context.run.tags, market_data.ingest_policy)
        result = market_data.ingestor("nifty50_benchmark", policy).run(
            {INDEX_SYMBOL: sessions},
            context.run.run_id,
            checks=PriceChecks.from_settings(market_data.settings),
        )
        yield from _emit(context, "nifty50_benchmark", result, market_data, BENCHMARK_CHECKS)

    return nifty50_benchmark


def _sentiment_asset(
    symbol_days: dg.MultiPartitionsDefinition, storage_kind: str
) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=symbol_days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata={"partition_expr": {"date": "date", "symbol": "symbol"}, **SENTIMENT_COLUMNS},
        check_specs=SENTIMENT_CHECKS,
        io_manager_key="warehouse_io_manager",
        group_name=GROUP,
        kinds={storage_kind, "pandas"},
    )
    def sentiment_snapshots(
        context: dg.AssetExecutionContext, market_data: dg.ResourceParam[MarketData]
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        """Mean VADER headline sentiment per symbol and session, from the headlines file."""
        path = market_data.settings.sentiment_headlines_file
        assert path is not None
        wanted = sessions_by_symbol(context.partition_keys)
        keys = [(day, symbol) for symbol, days in wanted.items() for day in days]
        daily = sentiment.score_headlines(sentiment.read_headlines(path), market_data.calendar)
        in_run = sentiment.for_keys(daily, keys)
        share = sentiment.coverage(in_run, keys)
        yield dg.Output(
            in_run,
            metadata={"coverage": share, "scored_symbol_days": len(in_run), "requested": len(keys)},
        )
        yield sentiment_check_result(share, path)

    return sentiment_snapshots
