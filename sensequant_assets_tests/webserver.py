"""Start and stop a real ``dagster dev`` (webserver + daemon) for end-to-end tests.

``dagster dev`` forks a code server, the webserver and the daemon (which in turn forks run
workers), so it runs in a process group of its own and is always torn down as a group:
a test that fails half-way must not leave a webserver holding a port or a run worker
holding the DuckDB lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = REPO_ROOT / "workspace.yaml"
LOCATION_STATUSES = """
{
  locationStatusesOrError {
    __typename
    ... on WorkspaceLocationStatusEntries { entries { name loadStatus } }
  }
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on PythonError { message causes { message } }
        }
      }
    }
  }
}
"""


class ServerError(RuntimeError):
    """The server did not start, died, or answered a request with an error."""


def venv_command(name: str) -> str:
    """A console script of the interpreter running the tests, so subprocesses use the same venv."""
    return str(Path(sys.executable).with_name(name))


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without project or Dagster variables, plus ``overrides``.

    Module-scoped fixtures run before the per-test ``isolated_env`` fixture, so a developer's
    SENSEQUANT_/BREEZE_/DAGSTER_HOME values would otherwise leak into the subprocesses.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SENSEQUANT_", "BREEZE_")) and name != "DAGSTER_HOME"
    }
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class DagsterDev:
    """A running ``dagster dev`` and what a test needs to talk to it."""

    url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr_tail(self, lines: int = 40) -> str:
        return tail(self.stderr_path, lines)

    def graphql(
        self, query: str, variables: Mapping[str, object] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """POST a GraphQL document and return its ``data``; errors raise with the server's log."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise ServerError(
                f"GraphQL errors: {payload['errors']}\n--- server stderr ---\n{self.stderr_tail()}"
            )
        return payload["data"]


def _location_problem(server: DagsterDev) -> str | None:
    """Why the code location is not usable yet (None once it is loaded without error)."""
    data = server.graphql(LOCATION_STATUSES, timeout=10)
    statuses = data["locationStatusesOrError"]
    entries = statuses.get("entries") if isinstance(statuses, dict) else None
    if not entries:
        return f"no code location reported: {statuses}"
    loading = [e["name"] for e in entries if e["loadStatus"] != "LOADED"]
    if loading:
        return f"code location(s) still loading: {', '.join(loading)}"
    workspace = data["workspaceOrError"]
    for entry in workspace.get("locationEntries", []) if isinstance(workspace, dict) else []:
        loaded = entry["locationOrLoadError"] or {}
        if loaded.get("__typename") == "PythonError":
            messages = [loaded["message"], *(c["message"] for c in loaded.get("causes") or [])]
            raise ServerError(
                f"code location {entry['name']} failed to load:\n" + "".join(messages)
            )
    return None


def wait_until_ready(server: DagsterDev, timeout: float) -> None:
    """Block until the webserver answers and the code location has loaded, or fail loudly."""
    deadline = time.monotonic() + timeout
    problem = "webserver not answering"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f"dagster dev exited with {server.process.returncode} before it was ready\n"
                f"--- server stderr ---\n{server.stderr_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=5):
                pass
            problem = _location_problem(server) or ""
            if not problem:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            problem = f"webserver not answering ({exc})"
        time.sleep(1)
    raise ServerError(
        f"dagster dev at {server.url} not ready after {timeout:.0f} s: {problem}\n"
        f"--- server stderr ---\n{server.stderr_tail()}"
    )


def stop(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGINT the group (what Ctrl-C does, so children shut down cleanly), then SIGKILL it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    # Run workers and helpers forked by the daemon may outlive the leader: kill the rest.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextlib.contextmanager
def dagster_dev(
    env: Mapping[str, str], cwd: Path, log_dir: Path, timeout: float = 180
) -> Iterator[DagsterDev]:
    """Run ``dagster dev`` on a free port with ``env`` until the block exits, whatever happens."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / "dagster-dev.out", log_dir / "dagster-dev.err"
    command = [venv_command("dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", WORKSPACE]
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(part) for part in command],
            cwd=cwd,
            env=dict(env),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            server = DagsterDev(f"http://127.0.0.1:{port}", process, stderr_path)
            wait_until_ready(server, timeout)
            yield server
        finally:
            stop(process)
