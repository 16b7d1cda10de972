"""Where the trading-day partitions begin: the setting, or the earliest start a run asked for.

``SENSEQUANT_HISTORY_START`` sets the first partition, but a person asking
``historical-run --start-date 2008-01-01`` should not have to edit it first. A run that asks
for an earlier start records that date in the home (``ArtifactLayout.history_start_file``), and
:func:`load_settings <sensequant_assets.settings.load_settings>` starts the partitions at the
earlier of the two in every process that reads this home: the command, Dagit's code location,
the daemon. The record only ever moves earlier, because partitions that exist may hold
materializations; a later setting cannot hide them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.atomic import write_atomic
from sensequant_assets.settings import Settings, SettingsError


def recorded_start(settings: Settings) -> dt.date | None:
    """The start recorded in the home, or None when no run asked for an earlier one."""
    path = ArtifactLayout.of(settings).history_start_file
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):  # a bad home is check_inputs' to report
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise SettingsError(
            f"{path}: expected one ISO date (the earliest partition a run asked for), got "
            f"{text[:40]!r}; fix or delete the file"
        ) from None


def widened(settings: Settings) -> Settings:
    """``settings`` with the partitions starting at the earlier of the setting and the record."""
    recorded = recorded_start(settings)
    if recorded is None or recorded >= settings.history_start:
        return settings
    return settings.model_copy(update={"history_start": recorded})


def extend_to(settings: Settings, start: dt.date, say: Callable[[str], None] = print) -> Settings:
    """Record ``start`` when it lies before the first partition, say so, and return the
    settings that see it; unchanged settings (and no write) when the partitions cover it."""
    if start >= settings.history_start:
        return settings
    path = write_atomic(
        ArtifactLayout.of(settings).history_start_file, f"{start.isoformat()}\n".encode()
    )
    say(
        f"partitions now start at {start} (were {settings.history_start}), recorded in {path}; "
        "reload the code location in Dagit to see them"
    )
    return settings.model_copy(update={"history_start": start})
