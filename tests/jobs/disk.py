"""A real SQLite job store whose disk a test fills and frees, and whose commits it can fail.

A full disk is SQLite's own: `PRAGMA max_page_count` on the writer connection set to the pages
the file has now, so the next write that needs a page fails with SQLITE_FULL ("database or disk
is full"); `free_disk` raises the limit again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalserve.errors import StorageFullError
from evalserve.jobs.models import JobEvent, ResultRow
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import NewEvent, StatusChange

__all__ = ["DiskStore", "InjectedCommitError"]


class InjectedCommitError(OSError):
    """What a commit failed with when the test asked for it (`DiskStore.fail_commits`)."""


class DiskStore(SQLiteJobStore):
    """`SQLiteJobStore` with a disk to fill. `refused` counts commits refused with
    `StorageFullError`; `fail_commits = n` makes the next n commits that carry results raise
    `InjectedCommitError` before reaching SQLite (`injected` counts them); `refuse_all`
    refuses every commit as a full disk would once not even a small row fits (a real full
    file still has room inside each table's pages)."""

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(path, **options)
        self.refused = 0
        self.fail_commits = 0
        self.injected = 0
        self.refuse_all = False

    async def on_writer(self, sql: str) -> list[tuple]:
        """Run one statement on the writer's connection, outside any transaction."""
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, lambda: [tuple(r) for r in self._conn().execute(sql).fetchall()])

    async def fill_disk(self) -> None:
        """From now on the file cannot grow: what does not fit in its pages is refused."""
        pages = (await self.on_writer("PRAGMA page_count"))[0][0]
        await self.on_writer(f"PRAGMA max_page_count = {pages}")

    async def free_disk(self) -> None:
        await self.on_writer("PRAGMA max_page_count = 4294967294")

    async def commit(self, results: Sequence[ResultRow] = (), events: Sequence[NewEvent] = (),
                     status: Sequence[StatusChange] = ()) -> list[JobEvent]:
        if self.refuse_all:
            self.refused += 1
            raise StorageFullError("the job store cannot write: refused by the test "
                                   "(every commit, however small)")
        if results and self.fail_commits:
            self.fail_commits -= 1
            self.injected += 1
            raise InjectedCommitError("the commit failed (injected by the test)")
        try:
            return await super().commit(results, events, status)
        except StorageFullError:
            self.refused += 1
            raise
