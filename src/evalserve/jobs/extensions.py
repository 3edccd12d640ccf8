"""How other components extend jobs: item hooks and finish hooks, passed to `JobRunner`
(as arq passes hooks to its `Worker`), never registered globally.

- `ItemHook`: `hook(job, item, record) -> dict` (or an awaitable of it): extra fields merged
  into each result record before it is stored (e.g. metrics against the item's `reference`;
  `job.options` holds the job's `metrics` and `track`). A failing hook adds
  `{"hook_errors": ["name: message", ...]}` to the record instead of failing the item.
- `FinishHook`: `async hook(job, records) -> list[{"event": type, "data": {...}}]`, run when a
  job completes, after its last result; the events they return are sent before `complete`. A
  failing hook becomes an `error` event (`{"error": {...}, "hook": name}`); the job completes.

A hook is named by its `__name__` in `hook_errors` and `error` events.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from evalserve.errors import error_body
from evalserve.jobs.models import EventType, Job
from evalserve.jobs.store import NewEvent

__all__ = ["ItemHook", "FinishHook", "apply_item_hooks", "finish_events", "hook_name"]

log = logging.getLogger(__name__)

ItemHook = Callable[[Job, dict[str, Any], dict[str, Any]],
                    "dict[str, Any] | Awaitable[dict[str, Any]]"]
FinishHook = Callable[[Job, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


def hook_name(hook: Callable[..., Any]) -> str:
    """How a hook is named in `hook_errors` and `error` events."""
    return getattr(hook, "__name__", repr(hook))


async def apply_item_hooks(hooks: Sequence[ItemHook], job: Job, item: dict[str, Any],
                           record: dict[str, Any]) -> dict[str, Any]:
    """`record` with every hook's extra fields merged in, in order (failures noted)."""
    for hook in hooks:
        try:
            extra = hook(job, item, record)
            if inspect.isawaitable(extra):
                extra = await extra
            if extra:
                record = {**record, **extra}
        except Exception as exc:
            name = hook_name(hook)
            log.warning("item hook %s failed: %s", name, exc)
            record = {**record,
                      "hook_errors": [*record.get("hook_errors", []), f"{name}: {exc}"]}
    return record


async def finish_events(hooks: Sequence[FinishHook], job: Job,
                        records: list[dict[str, Any]]) -> list[NewEvent]:
    """The events the finish hooks return for a completed job, in order (failures as
    `error` events that do not end the stream)."""
    events: list[NewEvent] = []
    for hook in hooks:
        name = hook_name(hook)
        try:
            for spec in await hook(job, records) or []:
                events.append(NewEvent(job.id, str(spec.get("event", "message")),
                                       dict(spec.get("data") or {})))
        except Exception as exc:
            log.warning("finish hook %s failed for job %s: %s", name, job.id, exc)
            events.append(NewEvent(job.id, EventType.ERROR,
                                   {"error": error_body(exc), "hook": name,
                                    "job_id": job.id, "status": job.status.value}))
    return events
