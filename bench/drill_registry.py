"""Registry drills at bench scale: the figures of docs/reliability.md, section 5.

Run from the repository root (about 1.5 minutes on two shared cores):

    .venv/bin/python bench/drill_registry.py [--pairs 50] [--only race,tamper]

1. race: ``pairs`` times, one process deploys a new approved candidate while another rolls
   production back, both released by one barrier; after each pair, do the registry's live run,
   the one run marked ``deployed`` and ``production/CURRENT`` agree?
2. tamper: six kinds of tampering (edit a status, drop a trigger, delete an audit-log row, swap
   the model file, edit the briefing, edit the manifest), each in a fresh home, each followed by
   the real promotion path (a promotion-sensor tick, then ``promote_job`` for each request).

Prints figures only; test_registry_drills.py asserts the invariants at a smaller scale.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import clean_env

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.defs import build_defs
from sensequant_assets.release.deployment import current_production
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.fault_drills import tree_hashes
from sensequant_assets_tests.registry_drills import (
    LIVE,
    TAMPERS,
    promote,
    race,
    tamper_scenario,
)


def drill_race(work: Path, pairs: int) -> None:
    home = work / "race"
    home.mkdir()
    started = time.perf_counter()
    with clean_env(home):
        result = race(ArtifactLayout(home), pairs)
    seconds = time.perf_counter() - started
    print(f"\n## race: {pairs} concurrent deploy/rollback pairs ({seconds:.1f} s, two processes)")
    print(f"registry and CURRENT agree after {result.agreed}/{pairs} pairs")
    for outcome, count in sorted(result.outcomes.items()):
        print(f"  {outcome}: {count}")
    for line in result.disagreements[:10]:
        print(f"  DISAGREE {line}")


def _detector(refusal: str) -> str:
    """The check that refused: the registry problem, or the file whose SHA-256 differed."""
    if match := re.search(r"outside sensequant: ([^;]+)", refusal):
        return f"sensor tick failed: {match.group(1)}"
    match = re.search(r"(\S+) has SHA-256", refusal)
    return f"promote_job failed: {match.group(1) if match else refusal[:120]} has another SHA-256"


def drill_tamper(work: Path) -> None:
    print("\n## tamper: the real promotion path after each kind of tampering")
    print("| kind | requested | refused | production changed | CURRENT | refusal |")
    print("|---|---|---|---|---|---|")
    caught = 0
    for index, (kind, tamper) in enumerate(TAMPERS.items()):
        home = work / f"tamper_{index}"
        home.mkdir()
        with clean_env(home):
            layout = ArtifactLayout(home)
            tamper_scenario(layout)
            before = tree_hashes(layout.production_dir)
            tamper(layout)
            requested, refusals = promote(build_defs(load_settings()))
            changed = tree_hashes(layout.production_dir) != before
            pointer = current_production(layout)
        caught += bool(refusals) and not changed and pointer == LIVE
        message = _detector(refusals[0]) if refusals else "—"
        print(
            f"| {kind} | {len(requested)} | {len(refusals)} | {changed} | "
            f"{'unchanged' if pointer == LIVE else pointer} | {message} |"
        )
    print(f"detected before anything deployed: {caught}/{len(TAMPERS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50, help="deploy/rollback pairs to race")
    parser.add_argument("--only", help="comma-separated drills: race, tamper")
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else {"race", "tamper"}
    with tempfile.TemporaryDirectory(prefix="drill_registry_") as tmp:
        if "race" in chosen:
            drill_race(Path(tmp), args.pairs)
        if "tamper" in chosen:
            drill_tamper(Path(tmp))


if __name__ == "__main__":
    main()
