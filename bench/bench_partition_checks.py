"""What per-partition asset checks on `ohlcv_daily` cost, beside the per-run checks of today.

Run from the repository root:

    .venv/bin/python bench/bench_partition_checks.py [--sessions 1000] [--repeat 3]

One `ohlcv_daily` run = 1 symbol × N trading days (the last N sessions up to 2025-12-31), as a
Dagit backfill issues it under ``BackfillPolicy.single_run()``, on the embedded instance as
shipped (``dagster.yaml``: batched SQLite events). Three variants, each in a fresh process with
its own home and instance, one after another and alternating over ``--repeat`` passes, so all
figures come from the same machine in the same invocation:

- ``per-run``: the five guardrail checks as the product defines them, one evaluation per check
  per run (failing partitions listed in the metadata);
- ``per-partition``: the same five checks with ``partitions_def`` (Dagster 1.13's partitioned
  asset checks, Preview), one evaluation per check per partition, each pointing at its
  partition's materialization so Dagit shows a verdict per partition;
- ``per-partition, 1 check``: only ``valid_rows`` per partition, the other four per run: the
  least a per-partition verdict can cost.

Before the timed run, each process does the bare data work (the domain calls without Dagster,
as ``bench_bookkeeping.py``) and one untimed 2-partition run. Printed: the run's wall and CPU
ms per partition, bookkeeping (run − bare), the extra cost over per-run, the events written,
and the projection to the deep-history target (NIFTY 100 × 2008–2025, 453k partitions, in
≤ 30 min on the embedded instance: ≈ 4 ms per partition for everything). Each variant is then
checked through the instance: the number of partitions with a stored per-partition verdict.
"""

import argparse
import datetime as dt
import multiprocessing
import statistics
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dagster as dg  # noqa: E402
from bench_bookkeeping import (  # noqa: E402
    HISTORY_START,
    LAST_DAY,
    OHLCV,
    Timing,
    _environment,
    _instance_yaml,
    _keys,
    _run,
    _settings,
    _timed,
    bare_work,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # noqa: E402
    AssetCheckEvaluationTargetMaterializationData,
)

from sensequant_assets.defs import build_defs  # noqa: E402
from sensequant_assets.defs.assets.market_data import _emit  # noqa: E402
from sensequant_assets.defs.checks import GUARDRAILS, failing_partitions  # noqa: E402
from sensequant_assets.defs.partitions import one_symbol_range_tags, sessions_by_symbol  # noqa: E402
from sensequant_assets.defs.tags import ingest_policy  # noqa: E402
from sensequant_assets.sources.ingest import MarketData, PriceChecks  # noqa: E402

SYMBOL, WARMUP_SYMBOL = "INFY", "ITC"
DEEP_PARTITIONS = 453_000
DEEP_BUDGET_MS = 30 * 60 * 1000 / DEEP_PARTITIONS
VARIANTS = {
    "per-run": "per-run checks (now)",
    "per-partition": "per-partition checks, 5 guardrails",
    "per-partition-1": "per-partition valid_rows, 4 per run",
}


def _per_partition_ohlcv(
    product: dg.AssetsDefinition, per_partition: set[str]
) -> dg.AssetsDefinition:
    """``ohlcv_daily`` as the product builds it, with the ``per_partition`` guardrails
    partitioned: one ``AssetCheckEvaluation`` per check and partition, targeting that
    partition's materialization (without it Dagit does not count the verdict as current)."""
    partitions_def = product.partitions_def
    specs = [
        dg.AssetCheckSpec(
            g.name,
            asset="ohlcv_daily",
            description=g.description,
            partitions_def=partitions_def if g.name in per_partition else None,
        )
        for g in GUARDRAILS
    ]
    per_run = tuple(g.name for g in GUARDRAILS if g.name not in per_partition)
    spec = product.specs_by_key[OHLCV]

    @dg.asset(
        name="ohlcv_daily",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata=dict(spec.metadata),
        check_specs=specs,
        io_manager_key="warehouse_io_manager",
        group_name=spec.group_name,
        kinds=set(spec.kinds),
        dagster_type=product.op.output_def_named("result").dagster_type,
    )
    def ohlcv_daily(
        context: dg.AssetExecutionContext, market_data: dg.ResourceParam[MarketData]
    ) -> Iterator[dg.Output | dg.AssetCheckResult | dg.AssetCheckEvaluation]:
        keys = list(context.partition_keys)
        policy = ingest_policy(context.run.tags, market_data.ingest_policy)
        result = market_data.ingestor("ohlcv_daily", policy).run(
            sessions_by_symbol(keys),
            context.run.run_id,
            checks=PriceChecks.from_settings(market_data.settings),
        )
        yield from _emit(context, "ohlcv_daily", result, market_data, per_run)
        stored = context.instance.get_latest_storage_id_by_partition(
            OHLCV, dg.DagsterEventType.ASSET_MATERIALIZATION, set(keys)
        )
        now = dt.datetime.now(dt.UTC).timestamp()
        for guardrail in GUARDRAILS:
            if guardrail.name not in per_partition:
                continue
            hits = [f for f in result.findings if f.rule in guardrail.rules]
            failing = set(failing_partitions(hits, keys))
            check_key = dg.AssetCheckKey(OHLCV, guardrail.name)
            # a check's output must be yielded; AssetCheckResult would do it, but in a ranged
            # run it cannot name a partition
            yield dg.Output(None, context.assets_def.get_output_name_for_asset_check_key(check_key))
            for key in keys:
                yield dg.AssetCheckEvaluation(
                    asset_key=OHLCV,
                    check_name=guardrail.name,
                    passed=key not in failing,
                    severity=guardrail.severity,
                    partition=key,
                    target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                        storage_id=stored[key], run_id=context.run.run_id, timestamp=now
                    )
                    if key in stored
                    else None,
                )

    return ohlcv_daily


def _definitions(variant: str, settings: object) -> dg.Definitions:
    defs = build_defs(settings)  # type: ignore[arg-type]
    if variant == "per-run":
        return defs
    per_partition = {g.name for g in GUARDRAILS}
    if variant == "per-partition-1":
        per_partition = {"valid_rows"}
    product = defs.resolve_assets_def("ohlcv_daily")
    assets = [a for a in defs.assets or () if OHLCV not in getattr(a, "keys", ())]
    return dg.Definitions(
        assets=[*assets, _per_partition_ohlcv(product, per_partition)],
        jobs=defs.jobs,
        resources=defs.resources,
        executor=defs.executor,
    )


@dataclass
class Measured:
    variant: str
    bare: Timing
    run: Timing
    partitions: int
    events: int
    checked_partitions: int  # partitions with a stored per-partition verdict of valid_rows


def measure(variant: str, sessions: list[dt.date]) -> Measured:
    """In a fresh process: the bare work, a warm-up run, the timed run, the stored verdicts."""
    bare_work((SYMBOL,), sessions[:2])  # imports, the first DuckDB file
    bare = bare_work((SYMBOL,), sessions)
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-checks-")))
        dagster_home = home / "dagster_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(
            yaml.safe_dump(_instance_yaml("sqlite", dagster_home))
        )
        stack.enter_context(_environment({"DAGSTER_HOME": str(dagster_home)}))
        defs = _definitions(variant, _settings(home))
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(dagster_home)))
        _run(defs, instance, one_symbol_range_tags(WARMUP_SYMBOL, sessions[0], sessions[1]))
        timing: list[Timing] = []
        with _timed(timing):
            run_id = _run(defs, instance, one_symbol_range_tags(SYMBOL, sessions[0], sessions[-1]))
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS, run
        keys = set(_keys(SYMBOL, sessions))
        infos = instance.event_log_storage.get_asset_check_partition_info(
            [dg.AssetCheckKey(OHLCV, "valid_rows")]
        )
        checked = sum(1 for i in infos if i.partition_key in keys and i.is_current)
        events = len(instance.all_logs(run_id))
    return Measured(variant, bare, timing[0], len(keys), events, checked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000, help="trading days in the run")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the variants")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _environment({}):
        calendar = build_defs(_settings(Path(tmp))).resources["market_data"].calendar
    sessions = list(calendar.sessions(HISTORY_START, LAST_DAY))[-args.sessions :]

    found: dict[str, list[Measured]] = {v: [] for v in VARIANTS}
    for done in range(args.repeat):
        for variant in VARIANTS:
            print(f"  [{variant}] pass {done + 1} ...", flush=True)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                measured = pool.submit(measure, variant, sessions).result()
            found[variant].append(measured)
            print(f"      {measured.run.wall:.1f} s", flush=True)

    n = len(sessions)
    print(
        f"\nohlcv_daily, 1 symbol x {n} sessions ({sessions[0]}..{sessions[-1]}) in one run, "
        f"embedded SQLite as shipped; medians of {args.repeat} pass(es), [min-max] of the wall "
        f"figure; deep-history budget {DEEP_BUDGET_MS:.2f} ms/partition for everything\n"
    )

    def per(values: list[float]) -> float:
        return statistics.median(values)

    base = per([1000 * m.run.wall / m.partitions for m in found["per-run"]])
    print(
        f"  {'variant':<38} {'run ms/part':>11} {'[min-max]':>13} {'cpu ms':>7} "
        f"{'bookkeeping':>11} {'extra':>7} {'events':>7} {'verdicts':>13} {'453k at this':>13}"
    )
    for variant, label in VARIANTS.items():
        runs = found[variant]
        wall = [1000 * m.run.wall / m.partitions for m in runs]
        keeping = per([1000 * (m.run.wall - m.bare.wall) / m.partitions for m in runs])
        cpu = per([1000 * m.run.cpu / m.partitions for m in runs])
        last = runs[-1]
        deep_min = per(wall) * DEEP_PARTITIONS / 60_000
        print(
            f"  {label:<38} {per(wall):11.2f} {f'[{min(wall):.2f}-{max(wall):.2f}]':>13} "
            f"{cpu:7.2f} {keeping:8.2f} ms {per(wall) - base:+7.2f} {last.events:7d} "
            f"{last.checked_partitions:>6}/{last.partitions:<6} {deep_min:9.0f} min"
        )
    bare = per([1000 * m.bare.wall / m.partitions for ms in found.values() for m in ms])
    print(f"\n  bare data work (no Dagster): {bare:.2f} ms/partition (median over all processes)")


if __name__ == "__main__":
    main()
