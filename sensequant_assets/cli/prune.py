"""`sensequant prune [--dry-run]`: apply the retention of :mod:`sensequant_assets.retention`."""

from __future__ import annotations

import argparse

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.orchestration.runs import EXIT_OK
from sensequant_assets.registry import StateManager
from sensequant_assets.retention import apply_prune, plan_prune
from sensequant_assets.settings import Settings


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    layout = ArtifactLayout.of(settings)
    names = None
    if layout.registry.exists():  # never create a registry just to read it
        runs = StateManager(layout.registry).get_candidate_runs(include_dryrun=True)
        names = {run.run_id for run in runs}
    plan = plan_prune(layout, settings.raw_dir, names)
    for note in plan.notes:
        print(f"note: {note}")
    for doomed in plan.doomed:
        print(f"  {_mib(doomed.size):>11}  {doomed.path}  ({doomed.reason})")
    verb = "would free" if args.dry_run else "freed"
    if not args.dry_run:
        apply_prune(plan)
    print(f"{len(plan.doomed)} item(s), {verb} {_mib(plan.size)}")
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    prune = sub.add_parser(
        "prune", help="delete raw files, progress files, dry runs and orphan teacher copies"
    )
    prune.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    prune.set_defaults(handler=cmd_prune)
