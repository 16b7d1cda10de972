#!/usr/bin/env python3
"""Golden pilot: run `make run`'s pilot in a fresh home and digest everything it produced.

A refactoring that must not change behaviour is checked by running the pilot before and after
it and comparing the two digests. The pilot is `sensequant historical-run --symbols RELIANCE,TCS
--start-date 2024-01-01 --end-date 2024-12-31` (offline synthetic data), run in a temporary
SENSEQUANT_HOME and DAGSTER_HOME (with the repository's dagster.yaml, as the Makefile copies
it) from that home as working directory, with every SENSEQUANT_/DAGSTER_ and seed variable of
the caller's environment removed, so nothing outside the repository's code steers it.

The digest holds every JSON, YAML, Markdown, CSV, HTML and LightGBM model file under the
home's release/ and data/models/ trees (parsed where they have a structure), every Parquet
file there and in the raw archive (data/raw/) as its sorted rows, any other file as its
SHA-256, the warehouse's tables (data/sensequant.duckdb) and the registry's tables and schema
(data/registry/candidates.sqlite). What differs between two runs of the same code is replaced
by a placeholder and nothing else: the home's path, candidate ids (`live_candidate_<ts>`),
Dagster run ids, timestamps, durations, the git commit and dirty flag, and the hashes of
files (or hash-chain rows) that contain those. Numbers are never rounded.

    scripts/golden_pilot.py --out FILE [--stress] [--keep DIR]
    scripts/golden_pilot.py --out FILE --from-home DIR   # digest a kept home again
    scripts/golden_pilot.py --compare A B     # prints the differing keys; exit 1 if any

`--stress` also runs the stress tests (`--run-stress-tests`) over a few windows inside the
pilot's out-of-sample span (the packaged windows all lie before 2024 and would be skipped).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PILOT = [
    "historical-run",
    "--symbols",
    "RELIANCE,TCS",
    "--start-date",
    "2024-01-01",
    "--end-date",
    "2024-12-31",
]
STRESS_WINDOWS = """name,start,end,nifty50_max_drawdown
2024 August,2024-08-14,2024-09-13,-0.05
2024 autumn selloff,2024-09-27,2024-11-21,-0.11
2024 December,2024-12-01,2024-12-19,
three days,2024-12-17,2024-12-19,
2020 COVID crash,2020-01-14,2020-03-31,-0.384
"""
SEED_VARIABLES = re.compile(r"^(SENSEQUANT_|DAGSTER_|CANDIDATE_|REWARD_|BREEZE_)")
TREES = ("release", "data/models", "data/raw")
TEXT_SUFFIXES = {".md", ".txt", ".html"}

TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}|\s?UTC)?"
)
CANDIDATE_ID = re.compile(r"live_candidate_\d{8}_\d{6}")
UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b"
)  # a Dagster run id, or a uuid4().hex (a candidate reservation's owner)
STAMPED_NAME = re.compile(r"(?<![0-9])\d{8}_(?=<RUN_ID>)")
PNG_DATA = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
SHORT_RUN = re.compile(r"\b(run) [0-9a-f]{8}\b")
GIT_COMMIT = re.compile(r"\b[0-9a-f]{40}\b")
GIT_DIRTY = re.compile(r"(uncommitted changes: )(True|False)")
# keys whose values are ids, timestamps, durations or the code's git state
VOLATILE_KEY = re.compile(
    r"(^|_)(at|timestamp|duration|elapsed|eta|seconds|commit|dirty)(_|$)|^(dagster_)?run_id$|^row_hash$"
)
STABLE_KEYS = {  # configuration numbers that only look volatile
    "breeze_backoff_seconds",
    "breeze_backoff_max_seconds",
    "breeze_timeout_seconds",
    "max_runtime_seconds",
}


def _placeholder(name: str) -> str:
    return f"<{name}>"


class Normaliser:
    """Replaces what differs between two runs of the same code; see the module docstring."""

    def __init__(self, home: Path, volatile_hashes: set[str]):
        self.home = str(home)
        self.volatile_hashes = volatile_hashes

    def text(self, value: str) -> str:
        value = value.replace(self.home, "<HOME>")
        value = CANDIDATE_ID.sub("live_candidate_<ID>", value)
        value = UUID.sub("<RUN_ID>", value)
        value = SHORT_RUN.sub(r"\1 <RUN_ID>", value)
        value = TIMESTAMP.sub("<TIMESTAMP>", value)
        value = GIT_COMMIT.sub("<COMMIT>", value)
        value = GIT_DIRTY.sub(r"\1<DIRTY>", value)
        for digest in self.volatile_hashes:
            value = value.replace(digest, "<SHA256>")
        return value

    def path(self, relative: str) -> str:
        return STAMPED_NAME.sub("<DATE>_", self.text(relative))

    def value(self, value: Any, key: str = "") -> Any:
        if key and key not in STABLE_KEYS and VOLATILE_KEY.search(key) and value is not None:
            return _placeholder(key)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item, key) for item in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        return value


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- running


def run_pilot(home: Path, stress: bool) -> None:
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not SEED_VARIABLES.match(k)}
    env.update(SENSEQUANT_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    command = [str(REPO / ".venv" / "bin" / "sensequant"), *PILOT]
    if stress:
        windows = home / "stress_windows.csv"
        windows.write_text(STRESS_WINDOWS, encoding="utf-8")
        env["SENSEQUANT_STRESS_WINDOWS_FILE"] = str(windows)
        command.append("--run-stress-tests")
    log = home / "pilot.log"
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(command, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.stderr.write(log.read_text(encoding="utf-8")[-4000:])
        raise SystemExit(f"the pilot failed (exit {done.returncode}); log: {log}")


# --------------------------------------------------------------------------- digesting


def _volatile_hashes(home: Path) -> set[str]:
    """SHA-256 of every produced file whose bytes hold an id, a timestamp or the home's path:
    such a hash differs between identical runs, so it is replaced wherever it is quoted."""
    probe = Normaliser(home, set())
    found: set[str] = set()
    for tree in TREES:
        for path in sorted((home / tree).rglob("*")):
            if not path.is_file() or path.suffix == ".parquet":
                continue
            data = path.read_bytes()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if probe.text(text) != text:
                found.add(_sha256(data))
    return found


def _records(columns: list[str], rows: list[tuple[Any, ...]], norm: Normaliser) -> list[Any]:
    """Rows as sorted lists of normalised values, keyed by their column."""
    cleaned = [
        {
            column: norm.value(_plain(value), column)
            for column, value in zip(columns, row, strict=True)
        }
        for row in rows
    ]
    return sorted(cleaned, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, bytes | str):
        return value.item()
    if isinstance(value, bytes):
        return _sha256(value)
    return value


def _parquet(path: Path, norm: Normaliser) -> dict[str, Any]:
    import pandas as pd

    frame = pd.read_parquet(path)
    columns = [str(c) for c in frame.columns]
    rows = [tuple(r) for r in frame.itertuples(index=False, name=None)]
    return {
        "columns": columns,
        "dtypes": [str(t) for t in frame.dtypes],
        "rows": _records(columns, rows, norm),
    }


def _html(text: str, norm: Normaliser) -> list[str]:
    text = PNG_DATA.sub(lambda m: f"<png {_sha256(base64.b64decode(m.group(1)))}>", text)
    return norm.text(text).splitlines()


def _file(path: Path, norm: Normaliser) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet(path, norm)
    if suffix == ".json":
        return norm.value(json.loads(path.read_text(encoding="utf-8")))
    if suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [norm.value(json.loads(line)) for line in lines if line.strip()]
    if suffix in (".yaml", ".yml"):
        import yaml

        return norm.value(yaml.safe_load(path.read_text(encoding="utf-8")))
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        return [[norm.text(cell) for cell in row] for row in rows]
    if suffix == ".html":
        return _html(path.read_text(encoding="utf-8"), norm)
    if suffix in TEXT_SUFFIXES:
        return norm.text(path.read_text(encoding="utf-8")).splitlines()
    data = path.read_bytes()
    return {"sha256": _sha256(data), "bytes": len(data)}


def _files(home: Path, norm: Normaliser) -> dict[str, Any]:
    """Every file of the trees by its normalised path; names equal once normalised (one
    progress file per Dagster run) are told apart by their content's order."""
    grouped: dict[str, list[Any]] = {}
    for tree in TREES:
        for path in sorted((home / tree).rglob("*")):
            if path.is_file():
                name = norm.path(path.relative_to(home).as_posix())
                grouped.setdefault(name, []).append(_file(path, norm))
    files: dict[str, Any] = {}
    for name, contents in sorted(grouped.items()):
        if len(contents) == 1:
            files[name] = contents[0]
            continue
        contents.sort(key=lambda c: json.dumps(c, sort_keys=True, default=str))
        for number, content in enumerate(contents, start=1):
            files[f"{name}[{number}]"] = content
    return files


def _warehouse(home: Path, norm: Normaliser) -> dict[str, Any]:
    import duckdb

    path = home / "data" / "sensequant.duckdb"
    if not path.exists():
        return {}
    tables: dict[str, Any] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "order by table_schema, table_name"
        ).fetchall()
        for schema, table in names:
            cursor = con.execute(f'select * from "{schema}"."{table}"')
            columns = [d[0] for d in cursor.description]
            tables[f"{schema}.{table}"] = {
                "columns": columns,
                "rows": _records(columns, cursor.fetchall(), norm),
            }
    return tables


def _registry(home: Path, norm: Normaliser) -> dict[str, Any]:
    path = home / "data" / "registry" / "candidates.sqlite"
    if not path.exists():
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        schema = con.execute(
            "select type, name, sql from sqlite_master where name not like 'sqlite_%' "
            "order by type, name"
        ).fetchall()
        digest: dict[str, Any] = {
            "user_version": con.execute("pragma user_version").fetchone()[0],
            "schema": {f"{kind} {name}": sql for kind, name, sql in schema},
        }
        for kind, name, _ in schema:
            if kind != "table":
                continue
            cursor = con.execute(f'select * from "{name}"')
            columns = [d[0] for d in cursor.description]
            digest[f"table {name}"] = _records(columns, cursor.fetchall(), norm)
        return digest
    finally:
        con.close()


def digest(home: Path) -> dict[str, Any]:
    norm = Normaliser(home, _volatile_hashes(home))
    return {
        "files": _files(home, norm),
        "warehouse": _warehouse(home, norm),
        "registry": _registry(home, norm),
    }


# --------------------------------------------------------------------------- comparing


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}/{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for number, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{number}]"))
        return out
    return {prefix: value}


def compare(a: Path, b: Path, show: Callable[[str], None] = print) -> int:
    left = flatten(json.loads(a.read_text(encoding="utf-8")))
    right = flatten(json.loads(b.read_text(encoding="utf-8")))
    differing = 0
    for key in sorted(left.keys() | right.keys()):
        if key not in right:
            show(f"only in {a.name}: {key} = {_short(left[key])}")
        elif key not in left:
            show(f"only in {b.name}: {key} = {_short(right[key])}")
        elif left[key] != right[key]:
            show(f"differs: {key}: {_short(left[key])} != {_short(right[key])}")
        else:
            continue
        differing += 1
    show(f"{differing} differing key(s) of {len(left.keys() | right.keys())}")
    return 1 if differing else 0


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


# --------------------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", type=Path, help="run the pilot and write its digest here")
    action.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument("--stress", action="store_true", help="also run the stress tests")
    parser.add_argument("--keep", type=Path, help="run in this (new) directory and keep it")
    parser.add_argument("--from-home", type=Path, help="digest a home --keep left; run nothing")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if args.from_home:
        return _write(args.out, digest(args.from_home.resolve()))
    if args.keep:
        args.keep.mkdir(parents=True)
        home = args.keep.resolve()
    else:
        home = Path(tempfile.mkdtemp(prefix="golden_pilot_")).resolve()
    try:
        run_pilot(home, args.stress)
        result = digest(home)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    return _write(args.out, result)


def _write(out: Path, result: dict[str, Any]) -> int:
    text = json.dumps(result, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    out.write_text(text, encoding="utf-8")
    print(f"{out}: {len(flatten(result))} keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
