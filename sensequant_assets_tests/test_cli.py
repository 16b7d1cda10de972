"""The `sensequant` command: exit codes, messages, and runs recorded in DAGSTER_HOME."""

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.cli import EXIT_OK, EXIT_USAGE, main
from sensequant_assets_tests.fault_drills import make_dagster_home


@pytest.mark.slow
def test_ingest_records_runs_in_the_configured_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dagster_home = make_dagster_home(tmp_path / "dagster_home")  # the repo's dagster.yaml
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    code = main(
        ["ingest", "--symbols", "reliance,TCS", "--start-date", "2024-01-01",
         "--end-date", "2024-02-29"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert "ohlcv_daily RELIANCE" in out and "ohlcv_daily TCS" in out
    assert "checks: 5 passed" in out and "nifty50_benchmark" in out
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert len(runs) == 3 and all(r.is_success for r in runs)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ingest", "--symbols", "RELIANC", "--start-date", "2024-01-01", "--end-date",
          "2024-01-31"], "did you mean RELIANCE"),
        (["ingest", "--symbols", "TCS", "--start-date", "2024-02-01", "--end-date",
          "2024-01-01"], "before --start-date"),
        (["ingest", "--symbols", "TCS", "--start-date", "2024-01-26", "--end-date",
          "2024-01-28"], "no NSE trading day"),
        (["ingest", "--symbols", "TCS", "--start-date", "26/01/2024", "--end-date",
          "2024-01-28"], "is not a date"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_bad_configuration_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "bloomberg")
    argv = ["ingest", "--symbols", "TCS", "--start-date", "2024-01-01", "--end-date", "2024-01-31"]
    assert main(argv) == EXIT_USAGE
    assert "SENSEQUANT_DATA_SOURCE" in capsys.readouterr().err


def test_universe_codes_compares_a_master(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master = tmp_path / "NSEScripMaster.txt"
    master.write_text(
        '"Token", "ShortName", "Series", "CompanyName", "ExchangeCode"\n'
        '"2885","RELIND","EQ","RELIANCE INDUSTRIES LTD","RELIANCE"\n'
        '"11536","TCSNEW","EQ","TATA CONSULTANCY SERV LT","TCS"\n'
    )
    argv = ["universe", "codes", "--master", str(master), "--symbols", "RELIANCE,TCS"]
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert "TCS" in out and "<- differs" in out and "1 of 2 symbol(s) differ" in out


@pytest.mark.slow
def test_train_shows_progress_and_builds_a_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dagster_home = make_dagster_home(tmp_path / "dagster_home")  # the repo's dagster.yaml
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", "INFY,TCS")
    argv = ["ingest", "--symbols", "INFY,TCS", "--start-date", "2024-01-01",
            "--end-date", "2025-03-31", "--no-benchmark"]  # fmt: skip
    assert main(argv) == EXIT_OK
    assert main(["train", "--symbols", "INFY,TCS", "--windows", "5"]) == EXIT_USAGE
    assert "need the NIFTY 50 benchmark" in capfd.readouterr().err
    assert main([*argv[:-1]]) == EXIT_OK
    code = main(["train", "--symbols", "INFY,TCS", "--windows", "5"])
    out, err = capfd.readouterr()
    assert code == EXIT_OK, out + err
    assert "training teachers: 2 symbol(s) x 5 window(s)" in out
    # neighbouring symbols needing the same windows share one run (a key-range rectangle)
    assert "teacher_model INFY..TCS (2x5)" in out
    assert "10/10 windows (completed" in out + err  # the tracker's live line
    assert "ETA" in out + err
    assert "student_model ok: candidate" in out

    assert main(["train", "--symbols", "INFY,TCS", "--windows", "5"]) == EXIT_OK
    again = capfd.readouterr().out
    assert "INFY" in again and "all 5 window(s) already trained" in again
    assert "windows (completed" not in again  # nothing retrained, the student still rebuilt
    assert "student_model ok" in again


def test_contiguous_blocks_become_one_range_each() -> None:
    from sensequant_assets.orchestration.runs import contiguous

    ordered = ["w1", "w2", "w3", "w4", "w5", "w6"]
    assert contiguous(ordered, ["w2", "w3", "w5"]) == [["w2", "w3"], ["w5"]]
    assert contiguous(ordered, []) == []


@pytest.mark.usefixtures("registry_env")
def test_candidates_commands_review_the_registry(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from sensequant_assets.artifacts import ArtifactLayout
    from sensequant_assets.registry import StateManager
    from sensequant_assets.settings import load_settings
    from sensequant_assets_tests.evidence import write_evidence

    layout = ArtifactLayout.of(load_settings())
    registry = StateManager(layout.registry)
    audit = layout.audit_dir(layout.candidate("live_candidate_20261124_101500"))
    registry.record_candidate_run(
        "live_candidate_20261124_101500", recommendation="approve", score=0.97, symbols=["TCS"],
        audit_dir=audit,
    )  # fmt: skip
    registry.record_candidate_run("live_candidate_20261124_111500", recommendation="reject")

    assert main(["candidates", "list", "--status", "ready-for-review"]) == EXIT_OK
    listing = capfd.readouterr().out
    assert "live_candidate_20261124_101500" in listing and "0.970" in listing
    approve = ["candidates", "approve", "live_candidate_20261124_101500", "--by", "asha"]
    assert main(approve) == EXIT_USAGE  # nothing to bind yet: no manifest, no briefing
    refused = capfd.readouterr().err
    assert "cannot approve live_candidate_20261124_101500: manifest.yaml" in refused
    assert len(refused.strip().splitlines()) == 1 and "Traceback" not in refused
    write_evidence(audit)
    assert main(approve) == EXIT_OK
    approved = capfd.readouterr().out
    assert "approved by asha" in approved and "promotion_briefing.json" in approved
    assert main(approve) == EXIT_USAGE
    assert "it is approved" in capfd.readouterr().err
    assert main(["candidates", "show", "live_candidate_20261124_101500"]) == EXIT_OK
    digest = hashlib.sha256((audit / "promotion_briefing.md").read_bytes()).hexdigest()
    assert f"sha256 {digest}  promotion_briefing.md" in capfd.readouterr().out
    reject = ["candidates", "reject", "live_candidate_20261124_111500", "--by", "asha",
              "--reason", "fails the majority baseline"]  # fmt: skip
    assert main(reject) == EXIT_OK
    assert main(["candidates", "show", "live_candidate_20261124_111500"]) == EXIT_OK
    shown = capfd.readouterr().out
    assert "ready-for-review -> rejected  by asha" in shown
    assert main(["candidates", "approve", "no_such_run", "--by", "asha"]) == EXIT_USAGE
    assert "no_such_run" in capfd.readouterr().err
    assert main(["candidates", "rollback", "--by", "asha"]) == EXIT_USAGE


@pytest.mark.usefixtures("registry_env")
def test_candidates_verify_reports_the_chain_and_exits_1_when_broken(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from sensequant_assets.artifacts import ArtifactLayout
    from sensequant_assets.cli import EXIT_FAILED
    from sensequant_assets.registry import StateManager
    from sensequant_assets.settings import load_settings
    from sensequant_assets_tests.databases import shell

    registry = StateManager(ArtifactLayout.of(load_settings()).registry)
    registry.record_candidate_run("live_candidate_20261124_101500", recommendation="reject")
    assert main(["candidates", "verify"]) == EXIT_OK
    assert "registry intact: 1 candidates; chains verified: 1 status_changes rows, 0 deploy" in (
        capfd.readouterr().out
    )
    shell(
        registry._url,
        "DROP TRIGGER status_changes_no_update",
        "UPDATE status_changes SET to_status = 'approved'",
    )
    assert main(["candidates", "verify"]) == EXIT_FAILED
    lines = capfd.readouterr().out.splitlines()
    assert "registry changed outside sensequant: trigger status_changes_no_update is" in lines[0]
    assert lines[1:] == [
        "  also: status_changes row 1 does not match its hash (a row was edited, inserted, "
        "deleted or reordered at or before it)",
        "  also: candidate live_candidate_20261124_101500 is ready-for-review but its audit log "
        "last says approved",
    ]


def test_teacher_blocks_cover_every_todo_window_exactly_once() -> None:
    import random

    from sensequant_assets.defs.partitions import teacher_blocks

    symbols = [f"S{i:02d}" for i in range(30)]
    windows = [f"w{i:02d}" for i in range(12)]
    rng = random.Random(3)
    for _ in range(200):
        todo = {
            s: [w for w in windows if rng.random() < 0.7] for s in symbols if rng.random() < 0.8
        }
        blocks = teacher_blocks(symbols, windows, todo, windows_per_run=48)
        covered = [(s, w) for b in blocks for s in b.symbols for w in b.windows]
        assert sorted(covered) == sorted((s, w) for s, ws in todo.items() for w in ws)
        for block in blocks:
            first, last = symbols.index(block.symbols[0]), symbols.index(block.symbols[-1])
            assert list(block.symbols) == symbols[first : last + 1]
            assert len(block.symbols) <= max(1, 48 // len(block.windows))
            low, high = windows.index(block.windows[0]), windows.index(block.windows[-1])
            assert list(block.windows) == windows[low : high + 1]
    weekly = teacher_blocks(symbols, windows, {s: windows[-1:] for s in symbols}, windows_per_run=8)
    assert [len(b.symbols) for b in weekly] == [8, 8, 8, 6]
    assert len(teacher_blocks(symbols, windows, {s: windows[-1:] for s in symbols})) == 1
    assert weekly[0].tags == {
        "dagster/asset_partition_range_start": "S00|w11",
        "dagster/asset_partition_range_end": "S07|w11",
    }
