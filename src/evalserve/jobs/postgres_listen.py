"""Live job events across replicas on PostgreSQL: `LISTEN`/`NOTIFY`.

Every commit that stores events sends one notification per job on `CHANNEL` (inside the
commit's transaction: PostgreSQL delivers it only once the commit is durable, never for a
rolled-back one), with the payload `<job id>:<last event id>`. Notifications are scoped to the
database, so replicas of other databases on the same server never see them. Each replica holds
one connection of its own that listens (`EventListener`), outside the pool, and hands each
notification to `on_event(job_id, last_event_id)`; the stored events stay the source of truth
(the listener only says "read the store"), so a notification lost while the listener
reconnects costs a subscriber at most one poll interval (`jobs/events.py`'s fallback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

__all__ = ["CHANNEL", "EventListener", "parse_payload"]

log = logging.getLogger(__name__)

CHANNEL = "evalserve_job_events"
#: Longest wait before reconnecting a listener whose connection failed.
_MAX_BACKOFF = 5.0


def parse_payload(payload: str) -> tuple[str, int] | None:
    """`(job_id, last_event_id)` of a notification (None for one this version cannot read)."""
    job_id, sep, last = payload.rpartition(":")
    if not sep or not job_id or not last.isdigit():
        return None
    return job_id, int(last)


class EventListener:
    """One `LISTEN` connection to `url` handing notifications to `on_event`; it reconnects
    (backing off to `_MAX_BACKOFF` s) whenever the connection fails."""

    def __init__(self, url: str, on_event: Callable[[str, int], None], *, where: str,
                 connect: dict[str, Any]) -> None:
        self.url = url
        self.on_event = on_event
        self.where = where
        self.connect = connect
        self.listening = asyncio.Event()
        """Set while the connection listens (tests wait on it)."""
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="jobs-pg-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, **self.connect) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.1
                    async for note in conn.notifies():
                        parsed = parse_payload(note.payload)
                        if parsed is not None:
                            self.on_event(*parsed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server restarted, the network dropped
                log.warning("job events: the LISTEN connection to %s failed (%s); "
                            "reconnecting in %.1f s (streams poll meanwhile)", self.where,
                            type(exc).__name__, delay)
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(_MAX_BACKOFF, delay * 2)
