"""Shared fixtures: every test gets its own SENSEQUANT_HOME and a clean environment."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sensequant_assets.settings import get_settings
from sensequant_assets_tests.services import PostgresServer, postgres_bin, postgres_server

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No SENSEQUANT_/BREEZE_ variable or `.env` from the developer's shell leaks into tests."""
    import os

    for name in list(os.environ):
        if name.startswith(("SENSEQUANT_", "BREEZE_", "DAGSTER_PG_")) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENSEQUANT_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster for the session; each test takes its own database."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer
) -> Path:
    """A DAGSTER_HOME running on the repo's production instance file, deploy/dagster.yaml."""
    home = tmp_path / "dagster_home_pg"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    postgres.create_database(database)
    for name, value in postgres.env(database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(params=["sqlite", "postgres"])
def registry_backend(request: pytest.FixtureRequest) -> str:
    """Where the registry and the call ledger live: the embedded SQLite file or Postgres.

    The tests that take it run once on each; the postgres run skips only when PostgreSQL is
    not installed."""
    if request.param == "postgres":
        request.getfixturevalue("postgres")
    return str(request.param)


@pytest.fixture
def new_database(
    registry_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[str], str | Path]:
    """A fresh, empty database on the backend under test, by name: an SQLite path under the
    test's directory, or the URL of a new Postgres database."""

    def make(name: str) -> str | Path:
        if registry_backend == "sqlite":
            return tmp_path / "databases" / f"{name}.sqlite"
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.create_database(f"{name}_{uuid.uuid4().hex[:12]}".lower())

    return make


@pytest.fixture
def registry_env(registry_backend: str, new_database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The home's registry on the backend under test: on the postgres run
    SENSEQUANT_REGISTRY_URL names a fresh database, so the CLI, sensors and assets use it."""
    if registry_backend == "postgres":
        monkeypatch.setenv("SENSEQUANT_REGISTRY_URL", str(new_database("registry")))
    get_settings.cache_clear()
