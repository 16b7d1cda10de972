"""Shared fixtures: every test gets its own SENSEQUANT_HOME and a clean environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sensequant_assets.settings import get_settings


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No SENSEQUANT_/BREEZE_ variable or `.env` from the developer's shell leaks into tests."""
    import os

    for name in list(os.environ):
        if name.startswith(("SENSEQUANT_", "BREEZE_")) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENSEQUANT_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
