"""The full run: `sensequant historical-run` for NIFTY 100 + 2 ETFs over 3 years, then a retrain.

Run from the repository root:

    .venv/bin/python bench/bench_full_run.py [--instance postgres|sqlite] [--symbols N]
        [--start YYYY-MM-DD] [--first-only] [--stress] [--keep DIR]

``--start 2008-01-01 --stress`` is the deep-history run (issue 16: NIFTY 100 since 2008, with
the stress tests over the packaged windows; it prints how many were evaluated);
``--first-only`` skips the retrain; ``--keep DIR`` runs in DIR (which must not exist) and
keeps it, to profile a stage against the home the run left.

Each figure is the real command in a subprocess on a fresh home: first time (backfill
included), then `--skip-fetch` (the retrain on data already materialized). With
``--instance postgres`` the Dagster instance is the repo's deploy/dagster.yaml on a throwaway
PostgreSQL cluster on 127.0.0.1 (the test suite's); ``sqlite`` is the embedded default.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sensequant_assets.artifacts import STRESS_SUMMARY_JSON  # noqa: E402
from sensequant_assets.universe import load_universe  # noqa: E402
from sensequant_assets_tests.services import postgres_server, process_states  # noqa: E402

START, END = "2023-01-02", "2025-12-31"
PHASE = re.compile(r"^\s+(\w+) done in ([\d.]+) s", re.MULTILINE)


class TreeMemory:
    """Peak summed RSS of a process and its descendants, sampled from /proc twice a second.

    The command's worker processes run side by side, so the figure that matters is their sum,
    not the largest single process that ``getrusage(RUSAGE_CHILDREN)`` reports.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            parents = {pid: parent for pid, (parent, _) in process_states().items()}
            tree, frontier = {self.pid}, [self.pid]
            while frontier:
                parent = frontier.pop()
                children = [p for p, pp in parents.items() if pp == parent and p not in tree]
                tree.update(children)
                frontier += children
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(pid) for pid in tree))


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1])


def _run(command: list[str], env: dict[str, str]) -> tuple[float, str, float]:
    """Wall seconds, output and peak summed memory (MiB) of ``command``."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    memory = TreeMemory(process.pid)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.startswith(("[", "  ✓", "  ✗", "      ")) or "done in" in line:
            print(f"    {line.rstrip()}", flush=True)
    process.wait()
    peak = memory.stop()
    output = "".join(lines)
    if process.returncode != 0:
        print(output[-3000:])
        raise SystemExit(f"{' '.join(command[:3])} exited {process.returncode}")
    return time.perf_counter() - started, output, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--symbols", type=int, default=102, help="how many symbols (default all)")
    parser.add_argument("--start", default=START, help=f"first session (default {START})")
    parser.add_argument("--first-only", action="store_true", help="skip the --skip-fetch retrain")
    parser.add_argument("--stress", action="store_true", help="run the stress tests too")
    parser.add_argument("--keep", type=Path, help="run in this new directory and keep it")
    args = parser.parse_args()
    start = args.start
    symbols = load_universe(None).default_symbols[: args.symbols]
    with ExitStack() as stack:
        if args.keep:
            home = args.keep
            home.mkdir(parents=True)
        else:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sensequant-full-")))
        dagster_home = home / "dagster_home"
        dagster_home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENSEQUANT_", "DAGSTER"))}
        env |= {"SENSEQUANT_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
                "SENSEQUANT_HISTORY_START": start, "PYTHONUNBUFFERED": "1"}  # fmt: skip
        if args.instance == "postgres":
            server = stack.enter_context(postgres_server())
            env |= server.env("postgres")
            shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
        else:
            shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
        command = [sys.executable, "-m", "sensequant_assets.cli", "historical-run", "--symbols",
                   ",".join(symbols), "--start-date", start, "--end-date", END,
                   *(["--run-stress-tests"] if args.stress else [])]  # fmt: skip
        print(f"full run: {len(symbols)} symbols {start}..{END}, {args.instance} instance")
        first, first_out, first_peak = _run(command, env)
        retrain, retrain_out, retrain_peak = 0.0, "", 0.0
        if not args.first_only:
            print("retrain on stored data (--skip-fetch)")
            retrain, retrain_out, retrain_peak = _run([*command, "--skip-fetch"], env)
        stress = [json.loads(p.read_text()) for p in home.glob(f"release/*/{STRESS_SUMMARY_JSON}")]

    print(f"\nfull run ({args.instance} instance, deploy/dagster.yaml)" if args.instance ==
          "postgres" else "\nfull run (embedded SQLite instance, dagster.yaml)")  # fmt: skip
    print(f"  symbols x range            {len(symbols)} x {start}..{END}")
    print(f"  first time (wall)          {first:.1f} s = {first / 60:.1f} min")
    for name, seconds in PHASE.findall(first_out):
        print(f"    {name:<24} {float(seconds):.1f} s")
    if not args.first_only:
        print(f"  retrain --skip-fetch       {retrain:.1f} s = {retrain / 60:.1f} min")
        for name, seconds in PHASE.findall(retrain_out):
            print(f"    {name:<24} {float(seconds):.1f} s")
    print(f"  peak memory (all processes) {max(first_peak, retrain_peak):.0f} MiB")
    for summary in stress:
        windows = summary["windows"]
        evaluated = [w["name"] for w in windows if w["status"] == "evaluated"]
        print(f"  stress windows evaluated   {len(evaluated)} of {len(windows)}")
        for window in windows:
            why = "" if window["status"] == "evaluated" else f": {window['reason']}"
            print(f"    {window['name']:<24} {window['status']}{why}")


if __name__ == "__main__":
    main()
