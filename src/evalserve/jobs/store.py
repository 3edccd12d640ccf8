"""The job store seam: what the runner, the routes and the CLI need from persistence.

`SQLiteJobStore` (`jobs/sqlite.py`) is the embedded default. A store guarantees that one
`commit` is atomic: results, their counters, the events announcing them and a status change
land together or not at all, so a crash never loses a stored result nor announces an unstored
one.

Storage faults: a store raises `StorageFullError` (503, `storage_unavailable`) when it cannot
write or read for now (a full disk, a lock held by another process) and the same call may
succeed later; any other exception means the call itself is wrong. A failed call changes
nothing and leaves the store usable (every transaction is ended). Callers wait such faults out:
the `ResultWriter` keeps its rows and retries, SSE streams retry their reads, and submissions
answer 503 until the store writes again.

Leases (several replicas on one database, `docs/replicas.md`): a replica runs a job only while
it holds the job's lease. `claim_jobs` takes queued jobs and running ones whose lease ran out
(their replica died) atomically, so two replicas never both take one; `renew_leases` extends
them and says which ones were lost (the job was cancelled, deleted or taken over: stop it);
`release_leases` gives them back `queued` at a clean stop. Lease times are the callers' clock
(`now`, default `time.time()`): replicas keep their clocks in sync (NTP).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalserve.errors import NotFoundError
from evalserve.jobs.models import Job, JobEvent, JobStatus, ResultRow

__all__ = ["JobStore", "NewEvent", "StatusChange", "PendingItem", "Claims", "job_not_found"]


def job_not_found(job_id: str) -> NotFoundError:
    """The 404 of a job that does not exist (the service answers the same for a job the
    caller may not see, so ids are not probeable)."""
    return NotFoundError(f"no job {job_id!r}: it never existed or it expired "
                         "(finished jobs are kept JOB_TTL_SECONDS)")


@dataclass
class NewEvent:
    """An event to store; the store assigns its id. `announces` marks those results announced."""

    job_id: str
    type: str
    data: dict[str, Any]
    final: bool = False
    announces: list[int] = field(default_factory=list)


@dataclass
class StatusChange:
    """A job status transition stored with the same commit."""

    job_id: str
    status: JobStatus
    started_at: float | None = None
    finished_at: float | None = None
    error: dict[str, Any] | None = None
    handed_back: bool = False
    """A clean stop gives the job back (`queued`): its start is not counted as an attempt,
    since only a process that died while running the job suggests the job is the cause."""
    report: dict[str, Any] | None = None
    """The job's report (`evalserve.judge.report.job_report`), stored with its end; None
    keeps the stored one."""


@dataclass
class PendingItem:
    """An item without a result yet."""

    idx: int
    item_id: str
    data: dict[str, Any]


@dataclass
class Claims:
    """Jobs whose lease a replica just took."""

    jobs: list[Job] = field(default_factory=list)
    """To run: each claim counted one start attempt."""
    poisoned: list[Job] = field(default_factory=list)
    """Running jobs whose replica died while running them `max_attempts` times: the claimer
    fails them instead (they may be what kills replicas); not counted again."""


class JobStore(ABC):
    """Persistence of jobs, items, results and events. Every method is safe to await from the
    event loop: implementations do their I/O off the loop."""

    async def open(self) -> None:
        """Create the schema and connections."""

    async def close(self) -> None:
        """Release connections and threads."""

    async def listen(self, on_event: Callable[[str, int], None]) -> bool:
        """Call `on_event(job_id, last_event_id)` whenever any process commits events of a
        job on this store (PostgreSQL: `LISTEN`/`NOTIFY`). False when the store cannot tell
        (SQLite): subscribers of jobs run elsewhere then learn of events by polling."""
        return False

    @abstractmethod
    async def create_job(self, job: Job, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Store a job and all its items in one transaction (`StorageFullError` at once when
        the store cannot write: nothing is stored)."""

    @abstractmethod
    async def get_job(self, job_id: str) -> Job:
        """The job, or `NotFoundError`."""

    @abstractmethod
    async def list_jobs(self, status: JobStatus | None = None, limit: int = 50, *,
                        owner: str | None = None) -> list[Job]:
        """Jobs, newest first; only those of `owner` when it is given."""

    @abstractmethod
    async def runnable_jobs(self, limit: int, *, now: float | None = None) -> list[Job]:
        """Jobs that may be claimed, in the order they should run: queued ones and running
        ones whose lease ran out before `now` (or that have none: a database of an older
        schema, a process that died); interrupted (already started) ones first, then
        round-robin across owners (each owner's oldest first), then by creation time."""

    @abstractmethod
    async def claim_jobs(self, replica: str, limit: int, *, lease_seconds: float,
                         max_attempts: int | None = None, among: Sequence[str] | None = None,
                         now: float | None = None) -> Claims:
        """Take the lease of up to `limit` runnable jobs (only those of `among` when given),
        in `runnable_jobs` order, atomically: a job is claimed by one replica only, however
        many race (returned in `among`'s order when given). Claimed jobs are `running`, held
        by `replica` until `now + lease_seconds`; each claim counts one start attempt, except
        a running job already started `max_attempts` times, which is claimed to be failed
        (`Claims.poisoned`)."""

    @abstractmethod
    async def renew_leases(self, replica: str, job_ids: Sequence[str], *,
                           lease_seconds: float, now: float | None = None) -> list[str]:
        """Extend `replica`'s leases of `job_ids` to `now + lease_seconds`; returns those of
        `job_ids` it no longer holds (cancelled, finished, deleted or taken over by another
        replica): its runner stops them at once."""

    @abstractmethod
    async def release_leases(self, replica: str, job_ids: Sequence[str]) -> int:
        """A clean stop: `replica`'s running jobs of `job_ids` go back to `queued` at once,
        their start not counted as an attempt, so another replica takes them without waiting
        for the lease to run out. Returns how many were released."""

    @abstractmethod
    async def count_active(self) -> int:
        """Queued + running jobs."""

    @abstractmethod
    async def count_queued(self, owner: str | None) -> int:
        """Queued jobs of `owner` (of the single-user owner None when None)."""

    @abstractmethod
    async def retry_items(self, job_id: str, *, unscored: bool = False) -> int:
        """Re-queue a finished job's `error` items (and `unscored` ones when asked): their
        results are deleted and the counters recomputed, the job goes back to `queued` with
        no finish time, error, report or attempts, and its earlier final events stop ending streams.
        Returns how many items will be graded again. `ConflictError` if the job is not
        finished or has no such item, `NotFoundError` if it does not exist."""

    @abstractmethod
    async def pending_items(self, job_id: str, after_idx: int, limit: int) -> list[PendingItem]:
        """Items of the job with index > `after_idx` and no stored result, by index."""

    @abstractmethod
    async def unannounced_results(self, job_id: str) -> list[ResultRow]:
        """Stored results not yet carried by any event (they were stored, then the process
        stopped before their batch filled)."""

    @abstractmethod
    async def commit(
        self,
        results: Sequence[ResultRow] = (),
        events: Sequence[NewEvent] = (),
        status: Sequence[StatusChange] = (),
    ) -> list[JobEvent]:
        """Store results (updating the job counters), events and status changes atomically;
        return the stored events with their ids. A status change to `running` counts one
        start attempt; one to any other status ends the job's lease. When it raises, nothing
        of it is stored: events built from these results must not be published (the
        `ResultWriter` publishes only what this returns)."""

    @abstractmethod
    async def get_report(self, job_id: str) -> dict[str, Any] | None:
        """The report stored when the job ended (None before, and after a retry queues it
        again); `NotFoundError` if the job does not exist."""

    @abstractmethod
    async def events_after(self, job_id: str, after_id: int, limit: int = 500) -> list[JobEvent]:
        """Stored events of the job with id > `after_id`, by id (none for an id past every
        event, however large)."""

    @abstractmethod
    async def records(self, job_id: str, after_idx: int = -1,
                      limit: int = 1000) -> list[tuple[int, dict]]:
        """`(index, record)` of the job's results with index > `after_idx`, by index."""

    @abstractmethod
    async def delete_expired(self, finished_before: float) -> list[str]:
        """Delete jobs finished before the given time (with items, results, events)."""
