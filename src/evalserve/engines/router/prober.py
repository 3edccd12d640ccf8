"""Health checks of the router's endpoints on `GET /models`.

An endpoint in rotation is checked every `health_check_interval` seconds (unless a request
succeeded there within that time: a busy endpoint answering requests is alive, however slow its
`/models` under load) and taken out when a check fails; one out of rotation (a failed check or
a failed request took it out) is probed after `probe_backoff` seconds, the wait doubling after
each failed probe up to `probe_backoff_max`, and is back in rotation as soon as a probe
answers. `check_due` does one round at the router's clock, so tests drive it with a fake clock
and no sleeps; `run` is the background loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from evalserve.errors import EvalserveError

if TYPE_CHECKING:
    from collections.abc import Callable

    from evalserve.engines.router.endpoint import Endpoint

__all__ = ["Prober"]

log = logging.getLogger(__name__)


class Prober:
    """Checks `endpoints` when due; `on_change(endpoint)` hears of every one in or out."""

    def __init__(self, endpoints: list[Endpoint], clock: Callable[[], float],
                 on_change: Callable[[Endpoint], None]) -> None:
        self.endpoints = endpoints
        self.clock = clock
        self.on_change = on_change
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the schedule again now (an endpoint was taken out: its probe is sooner)."""
        self._wake.set()

    async def check(self, endpoint: Endpoint) -> bool:
        """Ask `endpoint` for `/models`; True if it answered in time."""
        endpoint.checking = True
        try:
            async with asyncio.timeout(endpoint.policy.timeout):
                await endpoint.engine.models(refresh=True)
        except (EvalserveError, TimeoutError) as exc:
            reason = (exc.message if isinstance(exc, EvalserveError)
                      else f"no answer to GET /models within {endpoint.policy.timeout:g} s")
            was_in = endpoint.healthy
            endpoint.probe_failed(reason, self.clock())
            if was_in:
                log.warning("upstream %s (model %s) out of rotation: %s", endpoint.url,
                            endpoint.model, reason)
                self.on_change(endpoint)
            return False
        finally:
            endpoint.checking = False
        if endpoint.restore(self.clock()):
            log.warning("upstream %s (model %s) back in rotation", endpoint.url, endpoint.model)
            self.on_change(endpoint)
        return True

    async def check_due(self) -> float:
        """Check every endpoint that is due, concurrently; the seconds until the next is due."""
        now = self.clock()
        due = []
        for endpoint in self.endpoints:
            if endpoint.next_check > now or endpoint.checking:
                continue
            if endpoint.healthy and endpoint.recently_ok(now):  # busy serving: alive
                endpoint.next_check = endpoint.last_ok + endpoint.policy.interval  # type: ignore[operator]
            else:
                due.append(endpoint)
        if due:
            await asyncio.gather(*(self.check(e) for e in due))
        pending = [e.next_check for e in self.endpoints if not e.checking]
        return max(0.0, min(pending) - self.clock()) if pending else 0.0

    async def run(self) -> None:
        """Check endpoints as they fall due, until cancelled."""
        while True:
            self._wake.clear()  # before the round: a wake() during it is not lost
            delay = await self.check_due()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
