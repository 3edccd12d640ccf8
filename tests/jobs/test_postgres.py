"""What is PostgreSQL's own in `PostgresJobStore` (the shared behaviour is the contract
suite's, `tests/jobs/contract/`): the versioned schema and its migrations (replicas starting
together migrate once; a failed migration changes nothing; a newer database is refused), the
URL's password kept out of every message and log, a commit retried after its answer was
lost, and `JobService.from_settings` choosing this store at `DATABASE_URL`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import psycopg
import pytest

from evalserve.errors import ConfigurationError, StorageFullError
from evalserve.jobs.models import JobStatus
from evalserve.jobs.postgres import PostgresJobStore
from evalserve.jobs.postgres_schema import MIGRATIONS, SCHEMA_VERSION, Migration, migrate
from evalserve.jobs.service import JobService
from evalserve.jobs.store import NewEvent, StatusChange
from evalserve.settings import Settings
from tests.jobs.contract.rows import items, job, row
from tests.jobs.helpers import collect, engine
from tests.jobs.helpers import items as seed_items
from tests.postgres_server import PASSWORD, PostgresServer

#: Every migration's (version, description): what a database opened now has applied.
ALL = [(m.version, m.description) for m in MIGRATIONS]


def _versions(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version, description FROM schema_version "
                            "ORDER BY version").fetchall()


async def test_a_new_database_gets_the_whole_schema_at_its_version(postgres_url: str) -> None:
    store = PostgresJobStore(postgres_url, pool_size=2)
    await store.open()
    await store.close()
    assert _versions(postgres_url) == ALL
    assert ALL[-1][0] == SCHEMA_VERSION
    with psycopg.connect(postgres_url) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert tables == {"schema_version", "jobs", "items", "results", "events"}


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    """Six stores opening a new database at once: without the migration lock two of them
    would both create the tables (one failing on the catalog's unique index)."""
    stores = [PostgresJobStore(postgres_url, pool_size=1) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert _versions(postgres_url) == ALL
        await stores[0].create_job(job("a", 1.0), items(3))
        assert [j.id for j in await stores[5].list_jobs()] == ["a"]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_database_is_migrated_from_its_version_step_by_step(postgres_url: str) -> None:
    store = PostgresJobStore(postgres_url, pool_size=2)
    await store.open()
    await store.create_job(job("old", 1.0), items(2))
    await store.close()
    nxt = SCHEMA_VERSION + 1
    lease = Migration(nxt, "item leases (example)", (
        "ALTER TABLE items ADD COLUMN leased_by TEXT",
        "CREATE INDEX items_leased ON items (job_id, leased_by)"))
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        assert await migrate(conn, (*MIGRATIONS, lease)) == (SCHEMA_VERSION, nxt)
        assert await migrate(conn, (*MIGRATIONS, lease)) == (nxt, nxt)
        cur = await conn.execute("SELECT job_id, idx, leased_by FROM items ORDER BY idx")
        assert await cur.fetchall() == [("old", 0, None), ("old", 1, None)]
    assert [v for v, _ in _versions(postgres_url)] == list(range(1, nxt + 1))


async def test_a_failing_migration_changes_nothing(postgres_url: str) -> None:
    """A migration's statements run in one transaction with its version row: the first
    statement of a migration whose second fails is undone, the version stays."""
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        await migrate(conn)
        broken = Migration(SCHEMA_VERSION + 1, "broken", (
            "ALTER TABLE jobs ADD COLUMN lease_example TEXT",
            "ALTER TABLE no_such_table ADD COLUMN x TEXT"))
        with pytest.raises(psycopg.errors.UndefinedTable):
            await migrate(conn, (*MIGRATIONS, broken))
        cur = await conn.execute("SELECT column_name FROM information_schema.columns "
                                 "WHERE table_name = 'jobs' AND column_name = 'lease_example'")
        assert await cur.fetchall() == []
    assert _versions(postgres_url) == ALL


async def test_a_database_newer_than_this_evalserve_is_refused(postgres_url: str) -> None:
    store = PostgresJobStore(postgres_url)
    await store.open()
    await store.close()
    future = SCHEMA_VERSION + 5
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s, 'from the future', 0)", (future,))
    with pytest.raises(ConfigurationError, match=f"schema version {future}, newer than this "
                                                 f"evalserve's {SCHEMA_VERSION}: upgrade "
                                                 "evalserve") as refused:
        await PostgresJobStore(postgres_url).open()
    assert PASSWORD not in str(refused.value) and "***@" in str(refused.value)


async def test_the_password_is_in_no_message_nor_log(
        postgres_server: PostgresServer, postgres_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """A wrong password, a missing database and a server that is not there: each error says
    what is wrong, naming the server by its URL with the credentials masked."""
    caplog.set_level(logging.DEBUG)
    db = postgres_url.rsplit("/", 1)[1]
    wrong = "not-the-" + PASSWORD
    with pytest.raises(ConfigurationError, match="password authentication failed.*fix "
                                                 "DATABASE_URL") as login:
        await PostgresJobStore(postgres_server.url(db, password=wrong)).open()
    with pytest.raises(ConfigurationError, match='database "nope" does not exist'):
        await PostgresJobStore(postgres_server.url("nope")).open()
    gone = f"postgresql://evalserve:{PASSWORD}@127.0.0.1:1/{db}"
    with pytest.raises(StorageFullError, match="refused or lost.*Connection refused") as down:
        await PostgresJobStore(gone, timeout=1).open()
    store = PostgresJobStore(postgres_url)
    await store.open()
    await store.close()
    texts = [str(login.value), str(down.value), repr(store), caplog.text]
    assert f"postgresql://***@127.0.0.1:{postgres_server.port}/{db}" in str(login.value)
    assert "postgresql://***@127.0.0.1:1/" in str(down.value)
    assert "***@" in repr(store) and "***@" in caplog.text
    for text in texts:
        assert PASSWORD not in text and wrong not in text


async def test_a_commit_retried_after_its_answer_was_lost_stores_nothing_twice(
        postgres_url: str) -> None:
    """A commit the server took while the connection dropped before its answer raises in the
    writer, which commits the same rows again: the results are not counted again, and the
    batch that announced them is not stored again (its stored event comes back instead)."""
    store = PostgresJobStore(postgres_url)
    await store.open()
    try:
        await store.create_job(job("a", 1.0, total=3), items(3))

        def payload() -> tuple:
            return ([row("a", 0, 4), row("a", 1, 2)],
                    [NewEvent("a", "batch_complete", {"batch_number": 1}, announces=[0, 1])])

        first = await store.commit(*payload())
        again = await store.commit(*payload())
        assert [(e.id, e.data) for e in again] == [(e.id, e.data) for e in first] == \
            [(1, {"batch_number": 1})]
        a = await store.get_job("a")
        assert (a.completed, a.score_sum, a.batches) == (2, 6.0, 1)
        assert [e.id for e in await store.events_after("a", 0)] == [1]
        # A batch announcing a new result among announced ones is stored as usual.
        [later] = await store.commit([row("a", 2, 1)], [NewEvent(
            "a", "batch_complete", {"batch_number": 2}, announces=[1, 2])])
        assert later.id == 2 and (await store.get_job("a")).batches == 2
    finally:
        await store.close()


async def test_from_settings_stores_jobs_in_postgres_at_database_url(
        settings: Settings, postgres_url: str, tmp_path: Path) -> None:
    conf = settings.model_copy(update={"database_url": postgres_url, "database_pool_size": 3,
                                       "batch_size": 2})
    service = JobService.from_settings(conf, engine())
    assert isinstance(service.store, PostgresJobStore)
    assert (service.store.url, service.store.pool_size) == (postgres_url, 3)
    await service.start()
    try:
        sub = await service.submit(seed_items(3))
        events = await collect(service, sub.job.id)
        assert (await service.get(sub.job.id)).status is JobStatus.COMPLETED
    finally:
        await service.close()
    assert events[-1].type == "complete"
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM results WHERE job_id = %s",
                            (sub.job.id,)).fetchone() == (3,)
    assert not (conf.data_dir / "evalserve.db").exists()


async def test_a_store_not_open_says_so(postgres_url: str) -> None:
    store = PostgresJobStore(postgres_url)
    with pytest.raises(RuntimeError, match=r"not open: await store.open\(\) first"):
        await store.get_job("a")
    await store.open()
    await store.open()  # opening twice is harmless
    await store.commit(status=[StatusChange("zz", JobStatus.RUNNING)])  # no such job: no-op
    await store.close()
    await store.close()
