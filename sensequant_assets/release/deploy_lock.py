"""One deployment or rollback at a time, across processes: an exclusive lock on a file.

The promotion sensor's runs and a person's ``sensequant candidates rollback`` each read the
registry, copy or verify a bundle, record the deployment and switch ``CURRENT``. Two of them
interleaved left the registry naming one model and ``CURRENT`` another, so all of that happens
under ``fcntl.flock`` on ``data/models/deployment.lock`` (a local file system: ``flock`` is not
reliable over NFS). The kernel releases the lock when its holder dies, so a killed deployment
never blocks the next. The Dagster pool of ``production_model`` (limit 1) keeps promotion runs
from even queueing on it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sensequant_assets.registry import DeploymentConflictError

DEFAULT_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.02


@contextmanager
def deployment_lock(path: Path, action: str, wait: float | None = None) -> Iterator[None]:
    """Hold the lock at ``path`` for ``action``; wait up to ``wait`` seconds (default
    :data:`DEFAULT_WAIT_SECONDS`) for it, then raise :class:`DeploymentConflictError` naming the
    holder, having changed nothing."""
    wait = DEFAULT_WAIT_SECONDS if wait is None else wait
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = path.read_text().strip() or "another process"
                    raise DeploymentConflictError(
                        f"cannot {action}: {holder} has held {path} for more than {wait:g} s; "
                        "nothing was changed, try again once it is done"
                    ) from None
                time.sleep(_POLL_SECONDS)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} ({action})\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
