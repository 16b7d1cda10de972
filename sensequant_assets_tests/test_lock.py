"""The committed lock is what runs: the environment equals it, and it honours pyproject's ranges."""

import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PROJECT = "sensequant-assets"


def _lock_pins() -> dict[str, str]:
    """Name -> version of every lock entry whose environment marker holds here."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if not line or line[0] in "# -\t":
            continue
        spec, _, marker = line.removesuffix("\\").partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, version = spec.strip().split("==")
        key = canonicalize_name(name)
        assert key not in pins, f"{name} is pinned twice for this environment"
        pins[key] = version
    return pins


def _installed() -> dict[str, str]:
    found = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    found.pop(canonicalize_name(PROJECT), None)
    return found


def _project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        listed += extra
    return [Requirement(r) for r in listed if canonicalize_name(Requirement(r).name) != PROJECT]


def test_every_lock_entry_is_pinned_with_hashes() -> None:
    text = LOCK.read_text()
    entries = [line for line in text.splitlines() if line and line[0] not in "# -\t"]
    assert len(entries) > 150
    for entry in entries:
        assert "==" in entry and entry.endswith("\\"), entry
    assert text.count("--hash=sha256:") >= len(entries)


def test_the_lock_satisfies_pyproject_ranges() -> None:
    pins = _lock_pins()
    for requirement in _project_requirements():
        if requirement.marker and not requirement.marker.evaluate():
            continue
        version = pins.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in requirements.lock: make lock"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {requirement.name}=={version}, outside {requirement}"
        )


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
    reason="the lock describes the project's own .venv (make setup)",
)
def test_the_environment_is_exactly_the_lock() -> None:
    """`pip freeze` equals the lock: no version drifted and nothing outside it is installed."""
    pins, installed = _lock_pins(), _installed()
    drifted = {n: (pins[n], installed[n]) for n in pins.keys() & installed.keys()}
    assert {n: v for n, v in drifted.items() if v[0] != v[1]} == {}
    assert sorted(pins.keys() - installed.keys()) == [], "locked but not installed"
    assert sorted(installed.keys() - pins.keys()) == [], (
        "installed outside requirements.lock: rebuild with `make clean setup`"
    )
