"""The errors the registry raises on purpose: each one line a person can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sensequant_assets.registry.lifecycle import (
    APPROVED,
    DEPLOYED,
    FAILED,
    READY_FOR_REVIEW,
    REJECTED,
    RETIRED,
    RUNNING,
    STATUSES,
    TRANSITIONS,
)

_VERBS = {
    RUNNING: "mark running",
    READY_FOR_REVIEW: "mark ready for review",
    APPROVED: "approve",
    REJECTED: "reject",
    FAILED: "mark failed",
    DEPLOYED: "deploy",
    RETIRED: "retire",
}


class RegistryError(ValueError):
    """Base class of every error the registry raises on purpose."""


class UnknownRunError(RegistryError, LookupError):
    """No candidate run with this id is registered."""

    def __init__(self, run_id: str, action: str | None = None) -> None:
        self.run_id = run_id
        self.action = action
        prefix = f"cannot {action} {run_id}: " if action else ""
        super().__init__(f"{prefix}unknown candidate run {run_id!r} (it was never recorded)")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.action))


class IllegalTransitionError(RegistryError):
    """The requested status change is not allowed from the run's current status."""

    def __init__(
        self,
        run_id: str,
        current: str | None,
        requested: str,
        detail: str | None = None,
        *,
        action: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.current = current
        self.requested = requested
        self.allowed_from = _allowed_from(requested)
        self.detail = detail
        self.action = action
        if detail is None:
            sources = _either(self.allowed_from) or "nowhere: a run only starts in it"
            detail = f"it is {current} (allowed from {sources})"
        super().__init__(f"cannot {action or _VERBS[requested]} {run_id}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.run_id, self.current, self.requested, self.detail)
        return (_rebuild_transition_error, (type(self), args, self.action))


class NothingToRollBackError(RegistryError):
    """A rollback was requested but no earlier deployment exists to go back to."""


class RegistryBusyError(RegistryError):
    """Other writers kept the registry busy for longer than the manager's timeout."""


class TamperedRegistryError(RegistryError):
    """The registry file was changed outside the registry: a trigger is gone, a hash chain is
    broken or a status differs from its audit log. Nothing is deployed or rolled back."""


class DeploymentConflictError(RegistryError):
    """Another deployment or rollback holds the stage, or moved it since this one started."""


def _rebuild_transition_error(
    cls: type[IllegalTransitionError], args: tuple[Any, ...], action: str | None
) -> IllegalTransitionError:
    return cls(*args, action=action)


def _either(values: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join(filter(None, [", ".join(values[:-1]), values[-1]])) if values else ""


def _allowed_from(target: str) -> tuple[str, ...]:
    return tuple(status for status in STATUSES if target in TRANSITIONS[status])
