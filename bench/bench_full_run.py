"""The full run: `sensequant historical-run` for NIFTY 100 + 2 ETFs over 3 years, then a retrain.

Run from the repository root:

    .venv/bin/python bench/bench_full_run.py [--instance postgres|sqlite] [--symbols N]

Each figure is the real command in a subprocess on a fresh home: first time (backfill
included), then `--skip-fetch` (the retrain on data already materialized). With
``--instance postgres`` the Dagster instance is the repo's deploy/dagster.yaml on a throwaway
PostgreSQL cluster on 127.0.0.1 (the test suite's); ``sqlite`` is the embedded default.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sensequant_assets.universe import load_universe  # noqa: E402
from sensequant_assets_tests.services import postgres_server  # noqa: E402

START, END = "2023-01-02", "2025-12-31"
PHASE = re.compile(r"^\s+(\w+) done in ([\d.]+) s", re.MULTILINE)


def _run(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.startswith(("[", "  ✓", "  ✗", "      ")) or "done in" in line:
            print(f"    {line.rstrip()}", flush=True)
    process.wait()
    output = "".join(lines)
    if process.returncode != 0:
        print(output[-3000:])
        raise SystemExit(f"{' '.join(command[:3])} exited {process.returncode}")
    return time.perf_counter() - started, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--symbols", type=int, default=102, help="how many symbols (default all)")
    args = parser.parse_args()
    symbols = load_universe(None).default_symbols[: args.symbols]
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sensequant-full-")))
        dagster_home = home / "dagster_home"
        dagster_home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENSEQUANT_", "DAGSTER"))}
        env |= {"SENSEQUANT_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
                "SENSEQUANT_HISTORY_START": START, "PYTHONUNBUFFERED": "1"}  # fmt: skip
        if args.instance == "postgres":
            server = stack.enter_context(postgres_server())
            env |= server.env("postgres")
            shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
        else:
            shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
        command = [sys.executable, "-m", "sensequant_assets.cli", "historical-run", "--symbols",
                   ",".join(symbols), "--start-date", START, "--end-date", END]  # fmt: skip
        print(f"full run: {len(symbols)} symbols {START}..{END}, {args.instance} instance")
        first, first_out = _run(command, env)
        print("retrain on stored data (--skip-fetch)")
        retrain, retrain_out = _run([*command, "--skip-fetch"], env)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"\nfull run ({args.instance} instance, deploy/dagster.yaml)" if args.instance ==
          "postgres" else "\nfull run (embedded SQLite instance, dagster.yaml)")  # fmt: skip
    print(f"  symbols x range            {len(symbols)} x {START}..{END}")
    print(f"  first time (wall)          {first:.1f} s = {first / 60:.1f} min")
    for name, seconds in PHASE.findall(first_out):
        print(f"    {name:<24} {float(seconds):.1f} s")
    print(f"  retrain --skip-fetch       {retrain:.1f} s = {retrain / 60:.1f} min")
    for name, seconds in PHASE.findall(retrain_out):
        print(f"    {name:<24} {float(seconds):.1f} s")
    print(f"  peak memory (largest child) {peak:.0f} MiB")


if __name__ == "__main__":
    main()
