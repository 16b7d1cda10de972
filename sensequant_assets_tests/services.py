"""Real servers for the production-shape tests: a throwaway PostgreSQL cluster on 127.0.0.1.

The tests start their own cluster rather than relying on a system service, so they run the
same way on a laptop, in CI (which only installs the Debian package) and in parallel sessions.
PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
SERVER_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server binaries, or those on PATH; None when absent."""
    for directory in POSTGRES_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database for one test, so tests never see each other's runs."""
        import psycopg2

        with contextlib.closing(psycopg2.connect(self.url("postgres"))) as con:
            con.autocommit = True
            with con.cursor() as cursor:
                cursor.execute(f'create database "{name}"')
        return self.url(name)

    def env(self, database: str) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": database,
        }


def _as_server_user() -> tuple[dict[str, object], int | None]:
    """Subprocess options that drop root to the ``postgres`` account (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}, None
    account = pwd.getpwnam(SERVER_USER)
    return {"user": account.pw_uid, "group": account.pw_gid}, account.pw_uid


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a private cluster on a free loopback port; stop it and delete its files after."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries not found (apt-get install postgresql; .ci/run does)"
        )
    drop, owner = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="sensequant-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    password = "sensequant-test"
    pwfile = root / "pwfile"
    pwfile.write_text(password)
    if owner is not None:
        for path in (root, sockets, pwfile):
            os.chown(path, owner, -1)
    port = free_port()
    log = root / "server.log"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "sensequant", "-E", "UTF8",
              "-A", "scram-sha-256", f"--pwfile={pwfile}", "--no-sync"]  # fmt: skip
    subprocess.run(
        initdb,
        check=True,
        capture_output=True,
        **drop,  # type: ignore[arg-type]
    )
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=200"
    subprocess.run(
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
        **drop,  # type: ignore[arg-type]
    )
    try:
        server = PostgresServer("127.0.0.1", port, "sensequant", password)
        _wait_until_accepting(server)
        yield server
    finally:
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            **drop,  # type: ignore[arg-type]
        )
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_accepting(server: PostgresServer, timeout: float = 30.0) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(server.url("postgres")).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def process_states() -> dict[int, tuple[int, str]]:
    """Every live process as ``pid -> (parent pid, state letter)``, read from /proc (Linux)."""
    states = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited while we looked
            states[int(entry.name)] = (int(fields[1]), fields[0])
    return states


def processes_mentioning(text: str) -> dict[int, str]:
    """Live processes (not zombies) whose command line contains ``text``: pid -> command line."""
    found = {}
    for pid, (_, state) in process_states().items():
        if state == "Z" or pid == os.getpid():
            continue
        try:
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        command = " ".join(a.decode(errors="replace") for a in argv if a)
        if text in command:
            found[pid] = command
    return found


def wait_for_no_process_mentioning(text: str, seconds: float = 10.0) -> dict[int, str]:
    """Give exiting processes ``seconds`` to go; returns those still alive (empty when clean)."""
    deadline = time.monotonic() + seconds
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left
