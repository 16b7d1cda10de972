"""Running Dagster jobs from the command line, on the instance Dagit reads.

Commands run the same jobs Dagit runs, on the instance named by ``DAGSTER_HOME`` (an ephemeral
one when it is unset), and print one line per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Sequence

import dagster as dg

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PROGRESS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class UsageError(ValueError):
    """Bad arguments: the command exits 2 with the message."""


def parse_date(text: str) -> dt.date:
    """An ISO date argument, or argparse's usage error naming the bad value."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


def cli_instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    print("DAGSTER_HOME is not set: using an ephemeral instance (runs won't show in Dagit)")
    return dg.DagsterInstance.ephemeral()


def check_summary(result: dg.ExecuteInProcessResult) -> str:
    evaluations = result.get_asset_check_evaluations()
    failed = [e.check_name for e in evaluations if not e.passed]
    if not evaluations:
        return "checks: none ran"
    if not failed:
        return f"checks: {len(evaluations)} passed"
    return f"checks: {len(evaluations) - len(failed)} passed, not passed: {', '.join(failed)}"


def summary_lines(
    job: dg.JobDefinition, label: str, result: dg.ExecuteInProcessResult
) -> tuple[str, ...]:
    """One line about a finished run, then the message of each failed step."""
    # A range run records one materialization per partition, all carrying the run's metadata.
    materializations = result.asset_materializations_for_node(job.nodes[0].name)
    first = materializations[0].metadata if materializations else {}
    size = (
        f"rows {first['rows'].value:>6}"
        if "rows" in first
        else f"partitions {len(materializations):>3}"
    )
    status = "ok" if result.success else "FAILED"
    lines = [f"  {label:<32} {status:<7} run {result.run_id[:8]}  {size}  {check_summary(result)}"]
    if not result.success:
        lines += [
            f"    {event.step_failure_data.error.message.strip()}"
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data
        ]
    return tuple(lines)


def step_failure(event: dg.DagsterEvent) -> tuple[str, str]:
    """``(asset or step key, message of the user's exception)`` of a step-failure event.

    Dagster wraps the exception an asset raised; the innermost cause is what a person needs.
    """
    error = event.step_failure_data.error if event.step_failure_data else None
    while error is not None and error.cause is not None:
        error = error.cause
    return event.step_key or "", error.message.strip() if error else "step failed"


def contiguous(ordered: Sequence[str], wanted: Sequence[str]) -> list[list[str]]:
    """Split ``wanted`` into runs of neighbours in ``ordered``: one partition range each."""
    chosen = set(wanted)
    blocks: list[list[str]] = []
    current: list[str] = []
    for key in ordered:
        if key in chosen:
            current.append(key)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks
