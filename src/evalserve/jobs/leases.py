"""`Leases`: the runner's side of job leases (`jobs/store.py`): what this replica claims,
renews and releases.

A replica runs a job only while it holds the job's lease (`JOB_LEASE_SECONDS`). It renews its
leases every third of that; a renewal that finds a job no longer held (cancelled or deleted on
another replica, or taken over after this replica stalled past its lease) stops the job here
at once, without ending it: whoever holds it now ends it. A clean stop releases the leases, so
other replicas take the jobs at once; a replica that dies leaves them to expire, and a
reclaim after expiry counts as a start attempt (`MAX_JOB_ATTEMPTS`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from evalserve.jobs.store import Claims, JobStore

__all__ = ["Leases"]

log = logging.getLogger(__name__)


class Leases:
    """Claims, renewals and releases of `replica` on `store`; `clock` gives lease times."""

    def __init__(self, store: JobStore, replica: str, lease_seconds: float,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.replica = replica
        self.lease_seconds = lease_seconds
        self.clock = clock

    @property
    def renew_interval(self) -> float:
        """Seconds between renewals: a third of the lease, so two may fail before it ends."""
        return self.lease_seconds / 3

    async def claim(self, job_ids: Sequence[str], max_attempts: int | None) -> Claims:
        """Claim those of `job_ids` still claimable; as many as another replica took first
        are made up from the next runnable jobs (so a replica that loses a race does not sit
        idle until its next poll)."""
        claims = await self.store.claim_jobs(self.replica, len(job_ids),
                                             lease_seconds=self.lease_seconds,
                                             max_attempts=max_attempts, among=list(job_ids),
                                             now=self.clock())
        short = len(job_ids) - len(claims.jobs) - len(claims.poisoned)
        if short > 0:
            more = await self.store.claim_jobs(self.replica, short,
                                               lease_seconds=self.lease_seconds,
                                               max_attempts=max_attempts, now=self.clock())
            claims.jobs += more.jobs
            claims.poisoned += more.poisoned
        return claims

    async def renew(self, job_ids: Sequence[str]) -> list[str]:
        """Renew the leases of `job_ids`; those no longer held."""
        return await self.store.renew_leases(self.replica, list(job_ids),
                                             lease_seconds=self.lease_seconds, now=self.clock())

    async def release(self, job_ids: Sequence[str]) -> int:
        """Hand `job_ids` back `queued` (a clean stop)."""
        return await self.store.release_leases(self.replica, list(job_ids))

    async def keep(self, held: Callable[[], Iterable[str]],
                   lost: Callable[[str], None]) -> None:
        """Renew the jobs `held()` names every `renew_interval` until cancelled, calling
        `lost(job_id)` for each one no longer held. A renewal the store cannot take is logged
        and tried at the next interval (the lease outlasts two failed renewals)."""
        while True:
            await asyncio.sleep(self.renew_interval)
            job_ids = list(held())
            if not job_ids:
                continue
            try:
                gone = await self.renew(job_ids)
            except Exception:
                log.exception("renewing the leases of %d job(s) failed; retried in %.1f s",
                              len(job_ids), self.renew_interval)
                continue
            for job_id in gone:
                log.warning("job %s is no longer this replica's (%s): cancelled, deleted or "
                            "taken over; stopping it here", job_id, self.replica)
                lost(job_id)
