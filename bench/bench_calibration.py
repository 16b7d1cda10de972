"""The promotion gate's power curve and false-promotion rate on synthetic universes.

    .venv/bin/python bench/bench_calibration.py [--workers 2] [--only ic=0,0.05] [--limit N]
    .venv/bin/python bench/bench_calibration.py --summary

Each universe runs the whole candidate procedure, teachers included
(``evaluation.power.evaluate_universe``), and is appended as one JSON line to
``bench/results/calibration.jsonl`` (kept in the repository) the moment it finishes. A start
skips every (gate version, protocol, IC, seed, scale) already there, so the grid resumes
across sessions; Ctrl-C or a kill loses only the universes in flight.

The grid: IC 0 (no signal) on ``--nulls`` seeds and each planted IC on ``--planted`` seeds.
The headline ICs (0, 0.03, 0.05) run at NIFTY 100 scale (the 102 default symbols, ETFs
included) over 2022-01-01..2024-12-31; the others on the first ``--small`` symbols over the
same dates. Seeds are shared between ICs (the same noise with more or less signal), and the
universes are queued round-robin over the cells so a partial run fills all of them.

A run ends (and ``--summary`` does nothing else) by printing the cells as a markdown table
and writing the current gate's cells to the packaged
``sensequant_assets/evaluation/operating_characteristics.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensequant_assets.atomic import write_atomic
from sensequant_assets.evaluation.gate import GATE_VERSION
from sensequant_assets.evaluation.power import (
    PACKAGED_FILE,
    PROTOCOL_VERSION,
    append_result,
    canonical_ic,
    evaluate_universe,
    packaged_payload,
    read_results,
    result_key,
    summarize,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "calibration.jsonl"
# this checkout's copy, even when the package is imported from elsewhere (PYTHONPATH)
PACKAGED = ROOT / "sensequant_assets" / "evaluation" / PACKAGED_FILE
START, END = dt.date(2022, 1, 1), dt.date(2024, 12, 31)
NIFTY100 = 102
HEADLINE_ICS = (0.0, 0.05, 0.03)
OTHER_ICS = (0.08, 0.02, 0.01)
# one thread per library in each worker: the pool is the parallelism
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Universe:
    ic: float
    seed: int
    n_symbols: int
    start: dt.date = START
    end: dt.date = END

    @property
    def key(self) -> tuple[Any, ...]:
        return (GATE_VERSION, PROTOCOL_VERSION, canonical_ic(self.ic), self.seed,
                self.n_symbols, self.start.isoformat(), self.end.isoformat())  # fmt: skip

    def __str__(self) -> str:
        return f"ic {self.ic:.2f} seed {self.seed:>2} {self.n_symbols} symbols"


def grid(nulls: int, planted: int, small: int) -> list[Universe]:
    """Every universe of the grid, round-robin over the cells, headline cells first."""
    cells = [(0.0, nulls, NIFTY100)]
    cells += [(ic, planted, NIFTY100) for ic in HEADLINE_ICS if ic > 0]
    cells += [(ic, planted, small) for ic in OTHER_ICS]
    return [
        Universe(ic, seed, n) for seed in range(max(nulls, planted))
        for ic, count, n in cells if seed < count
    ]  # fmt: skip


def select(universes: Sequence[Universe], only: Sequence[str]) -> list[Universe]:
    """``--only`` filters: ``ic=0,0.05``, ``seed=0,1``, ``n_symbols=102`` (all must hold)."""
    kept = list(universes)
    for condition in only:
        name, _, values = condition.partition("=")
        if name not in ("ic", "seed", "n_symbols") or not values:
            raise SystemExit(f"--only {condition!r}: expected ic=…, seed=… or n_symbols=…")
        wanted = {canonical_ic(float(v)) if name == "ic" else int(v) for v in values.split(",")}
        kept = [u for u in kept if getattr(u, name) in wanted]
    return kept


def pending(universes: Sequence[Universe], results: Path) -> list[Universe]:
    """The universes whose key has no result yet (what a start runs; the rest is skipped)."""
    done = {result_key(r) for r in read_results(results)}
    return [u for u in universes if u.key not in done]


def run_one(universe: Universe, scratch: str) -> tuple[Universe, dict[str, Any] | None, str]:
    """In a worker: the universe's record, or None and the traceback of what went wrong."""
    workdir = Path(tempfile.mkdtemp(prefix="universe-", dir=scratch))
    try:
        record = evaluate_universe(
            universe.seed, universe.ic, universe.n_symbols, universe.start, universe.end, workdir
        )
        return universe, record, ""
    except Exception:
        return universe, None, traceback.format_exc()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent, which terminates them (and keeps what finished)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(todo: Sequence[Universe], workers: int, results: Path, scratch_root: str) -> int:
    """Evaluate ``todo`` on a pool of ``workers``; returns the number of failed universes."""
    saved_env = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    # inherited by every worker the pool spawns, before it imports anything
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    saved_handler = signal.signal(signal.SIGTERM, _interrupted)
    scratch = tempfile.mkdtemp(prefix="sensequant-power-", dir=scratch_root)
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(workers, initializer=_ignore_interrupts, maxtasksperchild=1)
    started, failures = time.perf_counter(), 0
    try:
        jobs = pool.imap_unordered(_star, [(u, scratch) for u in todo], chunksize=1)
        for done, (universe, record, error) in enumerate(jobs, start=1):
            elapsed = time.perf_counter() - started
            eta = elapsed / done * (len(todo) - done)
            if record is None:
                failures += 1
                print(f"[{done}/{len(todo)}] {universe}: FAILED\n{error}", flush=True)
                continue
            append_result(results, record)
            failed = [r["name"] for r in record["rules"] if not r["passed"]]
            figures = record["figures"]
            print(
                f"[{done}/{len(todo)}] {universe}: {record['recommendation']:<12} "
                f"failed {','.join(failed) or '-'}  student rank IC "
                f"{_ic(figures['student_rank_ic'])} (planted {_ic(figures['planted_rank_ic'])})  "
                f"{figures['seconds']:.0f} s  (eta {eta / 60:.0f} min)",
                flush=True,
            )
        pool.close()
    except KeyboardInterrupt:
        print("interrupted: finished universes are kept, those in flight are lost", flush=True)
        pool.terminate()
        raise
    finally:
        pool.join()
        shutil.rmtree(scratch, ignore_errors=True)
        signal.signal(signal.SIGTERM, saved_handler or signal.SIG_DFL)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return failures


def _ic(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def _baselines(cell: dict[str, Any]) -> str:
    n = cell.get("baseline_universes") or 0
    if not n:
        return "not recorded"
    return f"{cell['student_at_least_best']}/{n} ({_ic(cell['student_minus_best'])})"


def _star(args: tuple[Universe, str]) -> tuple[Universe, dict[str, Any] | None, str]:
    return run_one(*args)


def markdown(cells: Sequence[dict[str, Any]]) -> Iterator[str]:
    yield (
        "| gate | planted IC | scale | approved | rate | 95% interval (Clopper–Pearson) "
        "| needs review | rejected | rank IC: student / planted (medians) "
        "| student ≥ best baseline (median lead) | OOS sessions | s / universe |"
    )
    yield "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for c in cells:
        low, high = c["interval"]
        yield (
            f"| v{c['gate_version']}/p{c['protocol']} | {c['ic']:.2f} | {c['n_symbols']} symbols "
            f"× {c['start']}..{c['end']} | {c['approved']}/{c['universes']} "
            f"| {c['approval_rate']:.0%} | [{low:.3f}, {high:.3f}] | {c['needs_review']} "
            f"| {c['rejected']} | {_ic(c['student_rank_ic'])} / {_ic(c.get('planted_rank_ic'))} "
            f"| {_baselines(c)} | {c['oos_sessions'] or 0:.0f} "
            f"| {c['seconds_per_universe'] or 0:.0f} |"
        )


def summary(results: Path) -> None:
    """Print the table; only the repository's own results file refreshes the packaged figures
    (a side study's file must not replace the calibration the briefings quote)."""
    cells = summarize(read_results(results))
    print("\n".join(markdown(cells)))
    if results.resolve() != RESULTS.resolve():
        print(f"\n{results} is not {RESULTS}: the packaged figures are left as they are")
        return
    payload = packaged_payload(cells)
    write_atomic(PACKAGED, (json.dumps(payload, indent=2) + "\n").encode())
    print(f"\n{len(payload['cells'])} cell(s) of gate v{GATE_VERSION} → {PACKAGED}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", action="append", default=[], metavar="FIELD=V[,V…]")
    parser.add_argument("--limit", type=int, default=None, help="at most N new universes")
    parser.add_argument("--summary", action="store_true", help="only summarise the results")
    parser.add_argument("--nulls", type=int, default=60)
    parser.add_argument("--planted", type=int, default=20)
    parser.add_argument("--small", type=int, default=30, help="symbols of the non-headline ICs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--scratch",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where teachers are written (fsyncs there cost nothing; default /dev/shm)",
    )
    args = parser.parse_args()
    if not args.summary:
        wanted = select(grid(args.nulls, args.planted, args.small), args.only)
        todo = pending(wanted, args.results)
        print(
            f"gate v{GATE_VERSION}, protocol {PROTOCOL_VERSION}: {len(wanted) - len(todo)} of "
            f"{len(wanted)} selected universe(s) already in {args.results}",
            flush=True,
        )
        todo = todo[: args.limit] if args.limit is not None else todo
        print(f"running {len(todo)} on {args.workers} worker(s)", flush=True)
        try:
            failures = run(todo, args.workers, args.results, args.scratch)
        except KeyboardInterrupt:
            sys.exit(130)
        if failures:
            print(f"{failures} universe(s) failed; they are not recorded and will be retried")
    summary(args.results)


if __name__ == "__main__":
    main()
