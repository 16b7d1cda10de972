"""What the project's instance storages share to store Dagster's event batches.

Dagster 1.13 buffers two kinds of events and hands each buffer to
``EventLogStorage.store_event_batch`` when ``DAGSTER_EVENT_BATCH_SIZE`` is above 0 (0, the
default, stores every event on its own; ``dagster/_core/instance/methods/event_methods.py``,
``handle_new_event``):

- the ASSET_MATERIALIZATION_PLANNED and ASSET_CHECK_EVALUATION_PLANNED events a run writes
  when it is created, one per partition of a ranged run
  (``dagster/_core/instance/runs/run_domain.py``, ``_log_asset_planned_events``);
- the ASSET_MATERIALIZATION events of one output, one per partition
  (``dagster/_core/execution/plan/execute_step.py``,
  ``_log_materialization_or_observation_events_for_asset``).

A batch holds at most ``DAGSTER_EVENT_BATCH_SIZE`` events. The events themselves are the same
as without batching; only how many transactions store them changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry

# 1,000 rows of 7 columns stay far below Postgres' and SQLite's bound-parameter limits.
EVENT_BATCH_SIZE = "1000"


def enable_event_batches() -> None:
    """Turn on Dagster's event batches in this process unless the environment sets the size.

    Dagster reads ``DAGSTER_EVENT_BATCH_SIZE`` each time it stores an event, in whichever
    process stores it: the one creating a run (the daemon for a Dagit backfill, the command for
    ``sensequant ingest``) writes the planned events, the run's process its materializations.
    Each of them opens the instance's event log storage, so the storage sets it; setting the
    variable (``0`` turns batches off) overrides this.
    """
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)


def last_of_each_kind(events: Sequence[EventLogEntry]) -> list[int]:
    """Positions of the last event of each (asset, event type), in order.

    Applied in that order, they leave an asset's latest-event row as storing every event one by
    one would: each column ends with the value of the last event that sets it.
    """
    last: dict[tuple[str, str], int] = {}
    for position, event in enumerate(events):
        dagster_event = event.get_dagster_event()
        key = (str(dagster_event.asset_key), dagster_event.event_type_value)
        last.pop(key, None)
        last[key] = position
    return sorted(last.values())


def asset_event_runs(events: Sequence[EventLogEntry]) -> Iterator[tuple[bool, int, int]]:
    """``(are asset events, start, end)`` for each run of consecutive events of one sort.

    Asset events (planned, materialization, observation) are indexed together in one
    transaction; an asset check's planned event is indexed on its own, as Dagster does it.
    """
    start = 0
    while start < len(events):
        is_asset = events[start].dagster_event_type in ASSET_EVENTS
        end = start + 1
        while end < len(events) and (events[end].dagster_event_type in ASSET_EVENTS) == is_asset:
            end += 1
        yield is_asset, start, end
        start = end
