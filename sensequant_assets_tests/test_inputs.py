"""Bad inputs fail at start-up, on one line naming the variable and the file, never a traceback.

Runs the real CLI (``cli.main`` in-process, and the installed ``sensequant`` once as a
subprocess) over every file input x {missing, empty, binary, wrong columns}; then symbols,
``SENSEQUANT_HOME`` and read-only commands on an empty home; last, bad market-data files
(empty, a 100x jump), which fail their ingest run on a line naming the symbol.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sensequant_assets.cli import candidates, main
from sensequant_assets.defs import build_defs
from sensequant_assets.inputs import InputError, check_inputs
from sensequant_assets.orchestration.runs import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from sensequant_assets.settings import load_settings
from sensequant_assets.sources.base import SourceError
from sensequant_assets.sources.files import FilesSource
from sensequant_assets.universe import load_universe

SENSEQUANT = Path(sys.executable).with_name("sensequant")
MASTER_HEADER = '"Token", "ShortName", "Series", "CompanyName", "ExchangeCode"\n'
GOOD_MASTER = MASTER_HEADER + '"11536","TCS","EQ","TATA CONSULTANCY SERV LT","TCS"\n'
BINARY = b"PAR1\x15\x00\x15\x1c\x00\xff\xfe\x00\x00binary"
WRONG_COLUMNS = {
    "SENSEQUANT_CORPORATE_ACTIONS_FILE": "symbol,date,ratio\nTCS,2024-01-02,2\n",
    "SENSEQUANT_HOLIDAY_FILE": "holiday,day\nDiwali,2026-11-09\n",
    "SENSEQUANT_SCRIP_MASTER": '"Token","Name"\n"1","TCS"\n',
    "SENSEQUANT_SENTIMENT_HEADLINES_FILE": "when,ticker,text\n2024-01-02,TCS,Profit up\n",
    "SENSEQUANT_STRESS_WINDOWS_FILE": "title,from,to\nCovid,2020-02-20,2020-03-23\n",
    "--master": '"Token","Name"\n"1","TCS"\n',
}
FILE_INPUTS = sorted(WRONG_COLUMNS)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _argv(tmp_path: Path, variable: str, path: Path) -> list[str]:
    """A cheap command that reads nothing else; ``--master`` itself is one of the inputs."""
    master = tmp_path / "good_master.txt"
    master.write_text(GOOD_MASTER)
    if variable == "--master":
        return ["universe", "codes", "--master", str(path), "--symbols", "TCS"]
    return ["universe", "codes", "--master", str(master), "--symbols", "TCS"]


def _bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "inputs" / f"{kind}.csv"
    path.parent.mkdir(exist_ok=True)
    if kind == "empty":
        path.write_text("\n  \n")
    elif kind == "binary":
        path.write_bytes(BINARY)
    return path


def _assert_one_clear_line(code: int, out: str, err: str, *named: str) -> None:
    assert code == EXIT_USAGE, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in named:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "wrong columns"])
@pytest.mark.parametrize("variable", FILE_INPUTS)
def test_every_bad_input_file_stops_the_cli_with_one_line_naming_it(
    variable: str,
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _bad_file(tmp_path, kind.replace(" ", "_"))
    if kind == "wrong columns":
        path.write_text(WRONG_COLUMNS[variable])
    if variable.startswith("SENSEQUANT_"):
        monkeypatch.setenv(variable, str(path))
    code, out, err = _run(_argv(tmp_path, variable, path), capsys)
    _assert_one_clear_line(code, out, err, variable, str(path))


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_files_dir_must_be_a_directory(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bars"
    if kind == "a file":
        path.write_text("date,open\n")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(path))
    code, out, err = _run(_argv(tmp_path, "SENSEQUANT_FILES_DIR", path), capsys)
    _assert_one_clear_line(code, out, err, "SENSEQUANT_FILES_DIR", str(path))


@pytest.mark.parametrize(
    ("variable", "content", "where"),
    [
        ("SENSEQUANT_HOLIDAY_FILE", "date\n2027-01-26\n26/01/2027\n", ":3:"),
        ("SENSEQUANT_SCRIP_MASTER", GOOD_MASTER + '"9","X","EQ","EVIL","../../x"\n', "line 3"),
        (
            "SENSEQUANT_SENTIMENT_HEADLINES_FILE",
            "date,symbol,headline\n2024-01-02,TCS,ok\nyesterday,TCS,bad\n",
            "row 3",
        ),
        (
            "SENSEQUANT_STRESS_WINDOWS_FILE",
            "name,start,end\nCovid,2020-02-20,2020-03-23\nBad,2020-13-01,2020-03-23\n",
            "line 3",
        ),
        (
            "SENSEQUANT_CORPORATE_ACTIONS_FILE",
            "symbol,ex_date,kind,ratio\nTCS,2024-01-02,split,2\nTCS,2024-01-09,split,-2\n",
            "line 3, column ratio",
        ),
    ],
)
def test_a_content_error_names_the_line(
    variable: str,
    content: str,
    where: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "input.csv"
    path.write_text(content)
    monkeypatch.setenv(variable, str(path))
    code, out, err = _run(_argv(tmp_path, variable, path), capsys)
    _assert_one_clear_line(code, out, err, variable, str(path), where)


def test_the_installed_command_prints_no_traceback_for_a_binary_input(tmp_path: Path) -> None:
    path = tmp_path / "NSEScripMaster.txt"
    path.write_bytes(BINARY)
    env = {**os.environ, "SENSEQUANT_SCRIP_MASTER": str(path)}
    done = subprocess.run(
        [str(SENSEQUANT), "universe", "codes", "--master", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    _assert_one_clear_line(
        done.returncode, done.stdout, done.stderr, "SENSEQUANT_SCRIP_MASTER", str(path)
    )


def test_a_stress_windows_file_is_checked_when_definitions_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only after training, when the stress tests first read it."""
    path = tmp_path / "stress.csv"
    path.write_text("name,start,end\n")
    monkeypatch.setenv("SENSEQUANT_STRESS_WINDOWS_FILE", str(path))
    with pytest.raises(InputError, match=r"SENSEQUANT_STRESS_WINDOWS_FILE: .*stress.csv.*header"):
        build_defs(load_settings())


def test_home_pointing_at_a_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home.txt"
    home.write_text("not a directory")
    for candidate in (home, home / "nested"):
        monkeypatch.setenv("SENSEQUANT_HOME", str(candidate))
        code, out, err = _run(["candidates", "list"], capsys)
        _assert_one_clear_line(code, out, err, "SENSEQUANT_HOME", str(candidate))
    assert home.read_text() == "not a directory"


def test_a_rollback_to_a_missing_bundle_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file operation that fails for a known reason (an OSError) exits 1 with its message."""

    def missing(*_args: object, **_kwargs: object) -> None:
        raise FileNotFoundError("cannot roll back to run_a: its bundle is missing from /prod")

    monkeypatch.setattr(candidates, "rollback_production", missing)
    code, out, err = _run(["candidates", "rollback", "--by", "ops"], capsys)
    assert code == EXIT_FAILED
    assert "Traceback" not in out + err
    assert err == "error: cannot roll back to run_a: its bundle is missing from /prod\n"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SENSEQUANT_SYMBOLS", "TCS,../../x"), ("SENSEQUANT_SYMBOLS", "TCS,A B")],
)
def test_settings_symbols_must_be_nse_symbols(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InputError, match=f"{variable}: .* is not an NSE symbol"):
        check_inputs(load_settings())


@pytest.mark.parametrize("symbols", ["../../x", "TCS,..%2Fx", "A" * 21])
def test_cli_symbols_must_be_nse_symbols(symbols: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "ingest",
        "--symbols",
        symbols,
        "--start-date",
        "2024-01-02",
        "--end-date",
        "2024-01-03",
    ]
    code, out, err = _run(argv, capsys)
    _assert_one_clear_line(code, out, err, "is not an NSE symbol")


def test_a_scrip_master_cannot_make_the_files_source_read_outside_its_directory(
    tmp_path: Path,
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    secret = tmp_path / "x.csv"
    secret.write_text("date,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n")
    master = tmp_path / "NSEScripMaster.txt"
    master.write_text(GOOD_MASTER + '"9","EVIL","EQ","EVIL","../x"\n')
    with pytest.raises(ValueError, match=r"NSEScripMaster.txt: line 3.*'\.\./X'"):
        load_universe(master)
    source = FilesSource(files)
    for symbol in ("../x", "../X", "/etc/passwd", "x/../../x"):
        with pytest.raises(SourceError, match="is not an NSE symbol"):
            source.fetch(symbol, dt.date(2024, 1, 1), dt.date(2024, 1, 31))


def test_valid_symbols_still_resolve(tmp_path: Path) -> None:
    master = tmp_path / "NSEScripMaster.txt"
    master.write_text(GOOD_MASTER + '"9","MAHMAH","EQ","M AND M","M&M"\n')
    assert load_universe(master).resolve(["m&m", "BAJAJ-AUTO", "TCS"]) == [
        "M&M",
        "BAJAJ-AUTO",
        "TCS",
    ]
    files = tmp_path / "files"
    files.mkdir()
    pd.DataFrame({"date": ["2024-01-02"], "close": ["1"]}).to_csv(files / "M&M.csv", index=False)
    assert len(FilesSource(files).fetch("M&M", dt.date(2024, 1, 1), dt.date(2024, 1, 2))) == 1


READ_ONLY = [
    pytest.param(["universe", "codes", "--symbols", "TCS"], id="universe codes"),
    pytest.param(["--help"], id="help"),
    pytest.param(["candidates", "list"], id="candidates list"),
    pytest.param(["candidates", "show", "live_candidate_20260101_000000"], id="candidates show"),
    pytest.param(["candidates", "verify"], id="candidates verify"),
]


@pytest.mark.parametrize("argv", READ_ONLY)
def test_read_only_commands_leave_an_empty_home_empty(
    argv: list[str], isolated_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[:2] == ["universe", "codes"]:
        master = tmp_path / "NSEScripMaster.txt"
        master.write_text(GOOD_MASTER)
        argv = [*argv, "--master", str(master)]
    code = main(argv)
    capsys.readouterr()
    assert code in (EXIT_OK, EXIT_USAGE)
    assert list(isolated_env.iterdir()) == []


def test_loading_the_definitions_creates_no_file(isolated_env: Path) -> None:
    build_defs(load_settings())
    assert list(isolated_env.iterdir()) == []


def _ingest_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str
) -> tuple[int, str, str]:
    files = tmp_path / "files"
    files.mkdir()
    (files / "TCS.csv").write_text(text)
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(files))
    argv = ["ingest", "--symbols", "TCS", "--start-date", "2024-01-01", "--end-date", "2024-01-05"]
    return _run([*argv, "--no-benchmark"], capsys)


def test_an_empty_market_data_file_fails_its_ingest_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _ingest_file(tmp_path, monkeypatch, capsys, "")
    assert code == EXIT_FAILED
    assert f"{tmp_path / 'files' / 'TCS.csv'} is empty: expected a header date,open" in out
    assert "TCS: " not in out  # the file's name names the symbol: no "TCS: " before it


def test_a_100x_jump_fails_its_ingest_naming_symbol_date_and_both_prices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        "date,open,high,low,close,volume",
        "2024-01-01,2500,2520,2490,2510,1000",
        "2024-01-02,2512,2530,2500,2520,1000",
        "2024-01-03,252100,253000,251000,252500,1000",  # paise, not rupees
        "2024-01-04,2530,2540,2520,2535,1000",
        "2024-01-05,2535,2550,2530,2540,1000",
    ]
    code, out, _ = _ingest_file(tmp_path, monkeypatch, capsys, "\n".join(rows) + "\n")
    assert code == EXIT_FAILED
    assert "TCS: 4 data-quality error(s)" in out and "TCS: TCS" not in out
    assert "TCS 2024-01-03 [open]: open 252100 is 100 times the previous close 2520" in out
    assert "TCS 2024-01-04 [open]: open 2530 is 0.01002 times the previous close 252500" in out
