"""Fault drills at a bigger scale than the tests: the figures of docs/reliability.md.

Run from the repository root (about 12 minutes on two shared cores; ``--quick``: the tests' scale):

    .venv/bin/python bench/drill_faults.py [--quick] [--only kill,breeze_kill,flaky,corrupt,disk]

1. kill: ``sensequant ingest`` (synthetic, one run per symbol) SIGKILLed inside its third run
   on a persistent SQLite instance configured by the repo's dagster.yaml, then re-run;
2. breeze_kill: the same with Breeze: the killed run keeps the ``breeze_api`` pool slot, so a
   re-run waits (measured with a timeout) until the operator ends the run and frees the slot;
3. flaky: a Breeze backfill against a fake server that fails every few requests (502 page,
   500 payload, dropped connection) with a tight per-minute budget, then a healed re-run;
4. corrupt: every file a candidate's manifest hashes, flipped, truncated and deleted in turn,
   each time followed by a promotion attempt; plus the files promotion copies unhashed;
5. disk: the release step and the promotion under file-size limits from 2 KiB up
   (RLIMIT_FSIZE), then, where ``mount`` is permitted, with production on a tiny tmpfs
   (ENOSPC) of every size from too small to large enough.

Prints figures only; nothing is asserted (test_fault_drills.py asserts the invariants).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import yaml
from harness import clean_env, report

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.jobs import CANDIDATE_JOB, PROMOTE_JOB
from sensequant_assets.defs.tags import CANDIDATE_TAG
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.registry import StateManager, UnknownRunError
from sensequant_assets.release.deployment import current_production, deploy_to_production
from sensequant_assets.release.manifest import read_manifest, verify_artifacts
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.fake_breeze import API_ENDPOINTS, FakeBreeze
from sensequant_assets_tests.fault_drills import (
    BREEZE_POOL,
    OHLCV,
    RELEASE,
    Candidates,
    DiskFullWorker,
    Exactness,
    approve_for_drill,
    breeze_env,
    build_candidates,
    child_env,
    export_bars,
    failed_run_errors,
    flip_bytes,
    ingest_command,
    kill_mid_run,
    ledger_calls,
    leftovers,
    make_dagster_home,
    partition_keys,
    run_monitoring_pass,
    run_symbol,
    start_ingest,
    stuck_partitions,
    tree_hashes,
    warehouse_counts,
)

YEAR = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
KEY, SECRET, TOKEN = "bench-key-1111", "bench-secret-2222", "33445566"
SUMMARY: list[tuple[str, ...]] = []


def sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    return TradingCalendar().sessions(start, end)


def materializations(instance: dg.DagsterInstance, run_ids: list[str]) -> int:
    kind = dg.DagsterEventType.ASSET_MATERIALIZATION
    return sum(
        len(instance.get_records_for_run(r, of_type=kind, limit=100_000).records) for r in run_ids
    )


# --- 1. kill a backfill ----------------------------------------------------------------------


def drill_kill(work: Path, symbols: tuple[str, ...], dates: tuple[dt.date, dt.date]) -> None:
    home, dagster_home = work / "home", make_dagster_home(work / "dagster_home")
    home.mkdir()
    env = child_env(home, dagster_home)
    requested = partition_keys(symbols, sessions(*dates))
    command = ingest_command(symbols, *dates)
    figures: dict[str, str] = {"requested": f"{len(requested)} partitions, {len(symbols)} runs"}
    started = time.perf_counter()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        proc = start_ingest(command, env, work / "killed.log")
        # inside the run's step, before its partitions are recorded (one batch, at the end)
        killed = kill_mid_run(proc, instance, after=dg.DagsterEventType.STEP_START, min_finished=2)
        figures["killed after"] = f"{time.perf_counter() - started:.1f} s"
        run = instance.get_run_by_id(killed)
        assert run is not None
        recorded = instance.get_materialized_partitions(OHLCV)
        stuck = stuck_partitions(instance)
        before = {r.run_id for r in instance.get_runs()}
    counts = warehouse_counts(home / "data" / "sensequant.duckdb")
    own = {k for k in requested if k.endswith(f"|{run_symbol(run)}")}
    figures["killed run"] = (
        f"{run_symbol(run)}: {run.status.value}, {len(own) - len(stuck)} of {len(own)} "
        f"partitions recorded, {len(stuck)} stuck 'in progress', "
        f"{sum(1 for k in own if counts[k])} rows of it in DuckDB"
    )
    figures["state at kill"] = (
        f"{len(recorded)} partitions recorded, {sum(counts.values())} rows stored, "
        f"duplicated {Exactness.of(counts, requested).duplicated}"
    )
    figures["run monitoring, repo config"] = run_monitoring_pass(dagster_home, killed).value
    figures["run monitoring, max_runtime"] = run_monitoring_pass(
        dagster_home, killed, max_runtime_seconds=1
    ).value
    started = time.perf_counter()
    again = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        rerun = [r.run_id for r in instance.get_runs() if r.run_id not in before]
        redone = materializations(instance, rerun)
        missing = len(requested - instance.get_materialized_partitions(OHLCV))
    exact = Exactness.of(warehouse_counts(home / "data" / "sensequant.duckdb"), requested)
    figures["re-run"] = (
        f"exit {again.returncode}, {len(rerun)} runs, {redone} partitions re-materialized, "
        f"{time.perf_counter() - started:.1f} s"
    )
    figures["after re-run"] = (
        f"unrecorded {missing}, rows missing {exact.missing}, duplicated {exact.duplicated}, "
        f"unexpected {exact.unexpected}"
    )
    report("1. kill a backfill mid-run (synthetic)", figures)
    SUMMARY.append(
        ("kill -9 mid-backfill", f"{len(requested)} partitions", "1 SIGKILL",
         f"{len(requested) - exact.missing}", str(exact.missing), str(exact.duplicated))
    )  # fmt: skip


# --- 1b. kill a Breeze backfill: the pool slot ----------------------------------------------


def drill_breeze_kill(work: Path, symbols: tuple[str, ...], dates: tuple[dt.date, dt.date]) -> None:
    home, dagster_home = work / "home", make_dagster_home(work / "dagster_home")
    home.mkdir()
    requested = partition_keys(symbols, sessions(*dates))
    command = ingest_command(symbols, *dates)
    figures: dict[str, str] = {"requested": f"{len(requested)} partitions, {len(symbols)} runs"}
    with FakeBreeze(api_key=KEY, api_secret=SECRET, session_token=TOKEN) as fake:
        env = child_env(home, dagster_home, **breeze_env(fake.base_url, KEY, SECRET, TOKEN, 1))
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            proc = start_ingest(command, env, work / "killed.log")
            killed = kill_mid_run(proc, instance, after=dg.DagsterEventType.STEP_START)
            slots = instance.event_log_storage.get_concurrency_info(BREEZE_POOL).claimed_slots
            figures["slot after kill"] = (
                f"held by killed run: {[s.run_id for s in slots] == [killed]}"
            )
            calls, known = len(fake.history_calls()), {r.run_id for r in instance.get_runs()}
            blocked = start_ingest(command, env, work / "blocked.log")
            wait = 30.0
            try:
                blocked.wait(timeout=wait)
                outcome = f"exit {blocked.returncode}"
            except subprocess.TimeoutExpired:
                os.killpg(blocked.pid, signal.SIGKILL)
                blocked.wait()
                outcome = f"still waiting after {wait:.0f} s (killed)"
            stuck_run = [r.run_id for r in instance.get_runs() if r.run_id not in known]
            figures["re-run, slot held"] = (
                f"{outcome}; {len(fake.history_calls()) - calls} Breeze calls, "
                f"{materializations(instance, stuck_run)} partitions materialized"
            )
            # The operator: end the dead runs (what max_runtime_seconds would do) and free their
            # slots (Dagit's "free concurrency slots", or the daemon 60 s after the runs end).
            zombies = [
                r.run_id
                for r in instance.get_runs(
                    filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
                )
            ]
        statuses = [run_monitoring_pass(dagster_home, r, max_runtime_seconds=1) for r in zombies]
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            for run_id in zombies:
                instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        figures["operator"] = (
            f"{len(zombies)} dead runs marked {sorted({s.value for s in statuses})}, slots freed"
        )
        before = Counter(c.stock_code for c in fake.history_calls())
        again = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
        spent = Counter(c.stock_code for c in fake.history_calls()) - before
    exact = Exactness.of(warehouse_counts(home / "data" / "sensequant.duckdb"), requested)
    universe = load_universe()
    figures["re-run after freeing"] = (
        f"exit {again.returncode}; calls "
        + ", ".join(f"{s} {spent[universe.isec_code(s)]}" for s in symbols)
        + f"; rows missing {exact.missing}, duplicated {exact.duplicated}"
    )
    report("1b. kill a Breeze backfill: the breeze_api pool slot", figures)
    SUMMARY.append(
        ("kill -9, Breeze source", f"{len(requested)} partitions", "1 SIGKILL",
         f"{len(requested) - exact.missing} (after the slot is freed)", str(exact.missing),
         str(exact.duplicated))
    )  # fmt: skip


# --- 2. an intermittently failing Breeze server ----------------------------------------------


def drill_flaky(
    work: Path, symbols: tuple[str, ...], dates: tuple[dt.date, dt.date], per_minute: int
) -> None:
    home, dagster_home = work / "home", make_dagster_home(work / "dagster_home")
    home.mkdir()
    days = sessions(*dates)
    requested = partition_keys(symbols, days)
    command = ingest_command(symbols, *dates)
    universe = load_universe()
    code_of = {s: universe.isec_code(s) for s in symbols}
    retries, pattern = 2, "..F.FFF..F"
    figures: dict[str, str] = {
        "requested": f"{len(requested)} partitions, {len(symbols)} runs, {len(days)} candles each",
        "faults": f"pattern {pattern!r} over history requests, {retries} retries, "
        f"{per_minute} calls/minute (ledger and server)",
    }
    with FakeBreeze(
        api_key=KEY, api_secret=SECRET, session_token=TOKEN, per_minute=per_minute,
        fail_pattern=pattern, fail_with=("html_502", "error_500", "drop_connection"),
    ) as fake:  # fmt: skip
        env = child_env(
            home, dagster_home, **breeze_env(fake.base_url, KEY, SECRET, TOKEN, retries),
            SENSEQUANT_BREEZE_CALLS_PER_MINUTE=str(per_minute),
        )  # fmt: skip
        started = time.perf_counter()
        first = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        history, injected = fake.history_calls(), fake.injected_faults()
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            errors = failed_run_errors(instance)
            materialized = instance.get_materialized_partitions(OHLCV)
        counts = warehouse_counts(home / "data" / "sensequant.duckdb")
        stored = {k for k in requested if k.split("|")[1] not in errors}
        exact = Exactness.of(counts, stored)
        by_code = Counter(c.stock_code for c in history)
        faulted = Counter(c.stock_code for c in injected)
        recovered = [s for s in symbols if faulted[code_of[s]] and s not in errors]
        named = sum(f"NSE symbol {s}" in m for s, m in errors.items())
        ledger = ledger_calls(home / "data")
        received = [c for c in fake.calls if c.endpoint in API_ENDPOINTS]
        figures["first pass"] = f"exit {first.returncode}, {elapsed:.1f} s"
        figures["faults injected"] = (
            f"{len(injected)} in {len(history)} history calls "
            f"{dict(Counter(c.fault for c in injected))}"
        )
        figures["outcome"] = (
            f"{len(symbols) - len(errors)} runs succeeded ({len(recovered)} after retries), "
            f"{len(errors)} failed naming the symbol: {named}/{len(errors)} "
            f"({', '.join(sorted(errors))})"
        )
        figures["partitions"] = (
            f"{len(materialized)} materialized = stored rows {sum(counts.values())}; "
            f"partial {sum(1 for k in counts if k not in stored)}, duplicated {exact.duplicated}"
        )
        figures["budget"] = (
            f"max {max(by_code.values())} calls per symbol ({retries + 1} allowed); peak "
            f"{fake.peak_calls_per_minute()}/min of {per_minute}; ledger {sum(ledger.values())}"
            f" = server {len(received)} API calls; server refusals "
            f"{sum(1 for c in history if c.fault == 'minute_limit')}"
        )
        fake.fail_pattern = ""
        before = len(fake.history_calls())
        again = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
        spent = Counter(c.stock_code for c in fake.history_calls()[before:])
    final = Exactness.of(warehouse_counts(home / "data" / "sensequant.duckdb"), requested)
    stored_codes = {code_of[s] for s in symbols if s not in errors}
    figures["healed re-run"] = (
        f"exit {again.returncode}; {sum(spent.values())} history calls, "
        f"{sum(spent[c] for c in stored_codes)} of them for stored symbols; rows missing "
        f"{final.missing}, duplicated {final.duplicated}"
    )
    report("2. intermittent Breeze failures for a whole backfill", figures)
    SUMMARY.append(
        ("flaky Breeze", f"{len(requested)} partitions", f"{len(injected)} faulted calls",
         f"{len(stored)} first pass, {len(requested) - final.missing} after re-run",
         str(final.missing), str(final.duplicated))
    )  # fmt: skip


# --- 3. corrupt artifacts ----------------------------------------------------------------------


def _corruptions(path: Path) -> dict[str, Callable[[], None]]:
    return {
        "flip": lambda: flip_bytes(path),
        "truncate": lambda: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        "delete": path.unlink,
    }


def drill_corrupt(work: Path, golden: Path, candidates: Candidates) -> None:
    home = work / "home"
    shutil.copytree(golden, home)
    new = candidates.unreleased
    with DiskFullWorker(home) as worker:
        assert worker.run(CANDIDATE_JOB, candidates.scope(new), list(RELEASE))["success"]
    layout = ArtifactLayout(home)
    registry = StateManager(layout.registry)
    approve_for_drill(home, new, by="bench")
    artifacts = list(read_manifest(layout.audit_dir(layout.candidate(new)))["artifacts"])
    production = tree_hashes(layout.production_dir)
    attempts, refused, changed = 0, 0, 0
    for relative in artifacts:
        path = home / relative
        for corrupt in _corruptions(path).values():
            original = path.read_bytes()
            corrupt()
            attempts += 1
            try:
                deploy_to_production(layout, registry, new, by="bench")
            except ModelIntegrityError:
                refused += 1
            path.write_bytes(original)
            changed += tree_hashes(layout.production_dir) != production
    deployments = len(registry.deployment_history())
    briefing = layout.audit_dir(layout.candidate(new)) / "promotion_briefing.md"
    flip_bytes(briefing)
    try:
        deploy_to_production(layout, registry, new, by="bench")
        flipped_briefing = "DEPLOYED unnoticed"
    except ModelIntegrityError:
        flipped_briefing = "refused (the approval holds its SHA-256)"
    figures = {
        "hashed files": f"{len(artifacts)} (candidate bundle + audit directory)",
        "corruptions": f"{attempts} (flip 3 bytes, truncate to half, delete; each file)",
        "promotion refused": f"{refused} of {attempts} with ModelIntegrityError",
        "production changed": f"{changed} times; deployments recorded {deployments}",
        "flipped briefing": flipped_briefing,
    }
    report("3. corrupt artifacts at promotion", figures)
    SUMMARY.append(
        ("corrupt artifact", f"{len(artifacts)} hashed files", f"{attempts} corruptions",
         f"{refused} refused", "0", "0")
    )  # fmt: skip


# --- 4. a full disk ----------------------------------------------------------------------------


def _state(layout: ArtifactLayout, candidate: str, registry: StateManager) -> dict[str, object]:
    """What is on disk and in the registry for ``candidate``, judged whole or not."""
    audit = layout.audit_dir(layout.candidate(candidate))
    state: dict[str, object] = {}
    if (audit / "manifest.yaml").exists():
        try:
            verify_artifacts(read_manifest(audit), layout.home)
            state["manifest"] = "whole"
        except (ModelIntegrityError, yaml.YAMLError):
            state["manifest"] = "BROKEN"
    briefing = audit / "promotion_briefing.json"
    if briefing.exists():
        try:
            whole = json.loads(briefing.read_text())["release_id"] == candidate
        except (json.JSONDecodeError, KeyError):
            whole = False
        state["briefing"] = "whole" if whole else "BROKEN"
    bundle = layout.production_dir / candidate
    if bundle.exists():
        same = tree_hashes(bundle / "student") == tree_hashes(
            layout.candidate(candidate).student_dir
        )
        state["production bundle"] = "whole" if same else "BROKEN"
    try:
        state["registry"] = registry.get_candidate_run(candidate).status
    except UnknownRunError:
        state["registry"] = "absent"
    state["CURRENT"] = current_production(layout) or "-"
    state["leftovers"] = len(leftovers(layout.release, layout.models))
    return state


def _chain(
    worker: DiskFullWorker, layout: ArtifactLayout, candidates: Candidates, limit: int | None
) -> tuple[str, str]:
    """Release audit, briefing, approval, promotion: the first step that fails, and its error."""
    new, scope = candidates.unreleased, candidates.scope(candidates.unreleased)
    for step in RELEASE:
        result = worker.run(CANDIDATE_JOB, scope, [step], limit)
        if not result["success"]:
            return step, result["error"].splitlines()[0]
    approve_for_drill(layout.home, new, by="bench")
    result = worker.run(PROMOTE_JOB, {CANDIDATE_TAG: new}, fsize_limit=limit)
    if not result["success"]:
        return "production_model", result["error"].splitlines()[0][:90]
    return "-", "-"


def _reset(home: Path, golden: Path) -> None:
    for child in home.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(golden, home, dirs_exist_ok=True)


def drill_disk(work: Path, golden: Path, candidates: Candidates) -> None:
    home = work / "home"
    shutil.copytree(golden, home)
    layout = ArtifactLayout(home)
    limits = [2, 4, 6, 8, 12, 16, 24, 32, 40, 64, 128, 160, 192, 256, None]
    inconsistent = 0
    print("\n4. a full disk (RLIMIT_FSIZE on the release step and the promotion)")
    print(f"  {'limit':>8}  {'failed step':<19} {'error':<44} state after")
    with DiskFullWorker(home) as worker:
        for kib in limits:
            _reset(home, golden)
            step, error = _chain(worker, layout, candidates, kib * 1024 if kib else None)
            state = _state(layout, candidates.unreleased, StateManager(layout.registry))
            bad = "BROKEN" in state.values() or state["leftovers"] or (
                (state["registry"] == "deployed") != (state["CURRENT"] == candidates.unreleased)
            )  # fmt: skip
            inconsistent += bool(bad)
            shown = ", ".join(f"{k} {v}" for k, v in state.items())
            label = f"{kib} KiB" if kib else "none"
            print(f"  {label:>8}  {step:<19} {error[:44]:<44} {shown}")
    SUMMARY.append(
        ("disk full (RLIMIT_FSIZE)", f"{len(limits)} limits x 4 writers",
         f"{len(limits) - 1} limited chains", f"{len(limits) - inconsistent} consistent",
         "0", "0")
    )  # fmt: skip
    drill_tmpfs(work, golden, candidates)


def _mount_tmpfs(path: Path, kib: int) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


def drill_tmpfs(work: Path, golden: Path, candidates: Candidates) -> None:
    """Production on a tmpfs of each size: ENOSPC from a real file system, only there."""
    home = work / "tmpfs_home"
    shutil.copytree(golden, home)
    layout = ArtifactLayout(home)
    new = candidates.unreleased
    with DiskFullWorker(home) as worker:
        assert worker.run(CANDIDATE_JOB, candidates.scope(new), list(RELEASE))["success"]
    approve_for_drill(home, new, by="bench")
    released = work / "released"
    shutil.copytree(home, released)
    probe = work / "probe"
    probe.mkdir()
    if not _mount_tmpfs(probe, 64):
        print("\n4b. tmpfs: mount not permitted here; skipped")
        return
    subprocess.run(["umount", str(probe)], check=True)
    # What promotion copies, in 4 KiB pages: sweep the sizes around it.
    audit = layout.audit_dir(layout.candidate(new))
    files = [*layout.candidate(new).student_dir.iterdir(), audit / "manifest.yaml",
             audit / "promotion_briefing.json", audit / "promotion_briefing.md"]  # fmt: skip
    bundle = sum(-(-f.stat().st_size // 4096) * 4 for f in files)
    print(f"\n4b. production on a tmpfs of N KiB (ENOSPC); the bundle needs {bundle} KiB")
    outcomes: Counter[str] = Counter()
    with DiskFullWorker(home) as worker:
        for kib in range(bundle - 12, bundle + 16, 4):
            _reset(home, released)
            layout.production_dir.mkdir(parents=True, exist_ok=True)
            assert _mount_tmpfs(layout.production_dir, kib)
            try:
                result = worker.run(PROMOTE_JOB, {CANDIDATE_TAG: new})
                state = _state(layout, new, StateManager(layout.registry))
                state["leftovers"] = leftovers(layout.production_dir)
            finally:
                subprocess.run(["umount", str(layout.production_dir)], check=True)
            error = (result["error"] or "-").splitlines()[0][:50]
            consistent = (state["registry"] == "deployed") == (state["CURRENT"] == new)
            kind = "ok" if result["success"] else (
                "clean failure" if consistent and not state["leftovers"] else "INCONSISTENT"
            )  # fmt: skip
            outcomes[kind] += 1
            print(
                f"  {kib:>4} KiB  {kind:<14} {error:<50} registry {state['registry']}, "
                f"CURRENT {state['CURRENT']}, bundle {state.get('production bundle', 'absent')}"
                f", leftovers {[Path(p).name for p in state['leftovers']]}"  # type: ignore[union-attr]
            )
    SUMMARY.append(
        ("disk full (tmpfs ENOSPC)", f"{sum(outcomes.values())} sizes", "promotion",
         f"{outcomes['ok'] + outcomes['clean failure']} consistent",
         f"{outcomes['INCONSISTENT']} inconsistent", "0")
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tests' scale")
    parser.add_argument("--only", help="comma-separated drills (kill, breeze_kill, flaky, ...)")
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else None
    universe = load_universe()
    many = tuple(sorted(universe.default_symbols))
    if args.quick:
        kill_symbols, kill_dates = ("INFY", "ITC", "LT", "TCS"), (YEAR[0], dt.date(2024, 3, 28))
        flaky_symbols, flaky_dates, per_minute = many[:5], (YEAR[0], dt.date(2024, 2, 29)), 100
    else:
        kill_symbols, kill_dates = many[:8], YEAR
        flaky_symbols, flaky_dates, per_minute = many[:30], YEAR, 30
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sensequant-drills-") as tmp:
        work = Path(tmp)
        drills: list[tuple[str, Callable[[Path], None]]] = [
            ("kill", lambda w: drill_kill(w, kill_symbols, kill_dates)),
            ("breeze_kill", lambda w: drill_breeze_kill(w, kill_symbols[:3], kill_dates)),
            ("flaky", lambda w: drill_flaky(w, flaky_symbols, flaky_dates, per_minute)),
        ]
        for name, drill in drills:
            if chosen is None or name in chosen:
                (work / name).mkdir()
                drill(work / name)
        if chosen is None or {"corrupt", "disk"} & chosen:
            golden = work / "golden"
            golden.mkdir()
            with clean_env(golden):
                os.environ.update(export_bars(golden))
                candidates = build_candidates(golden)
            for name, late in (("corrupt", drill_corrupt), ("disk", drill_disk)):
                if chosen is None or name in chosen:
                    (work / name).mkdir()
                    late(work / name, golden, candidates)
    print("\nsummary")
    header = ("drill", "units", "faults injected", "survived", "lost", "duplicated")
    for row in (header, *SUMMARY):
        print("  " + " | ".join(row))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
