"""Three `evalserve serve` replicas on the bundled model and one real PostgreSQL: a job
submitted to replica A and followed on replica B; A killed mid-job (SIGKILL, then in the
second test SIGTERM). The job is taken over (after its lease runs out; at once after a
SIGTERM), B's stream ends with `complete`, every item has exactly one result, none is
announced twice, and `/results` on replica C agrees.

The job has the issue's 300 items (`MAX_NEW_TOKENS=24` keeps each a fraction of a second on
the bundled model)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.server import ServerProcess
from tests.e2e.test_evaluate import seed_items, stream
from tests.e2e.test_jobs_resume import SHORT_RUBRIC
from tests.postgres_server import PostgresServer, fresh_database, postgres_server_fixture
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

postgres_server = pytest.fixture(scope="module")(postgres_server_fixture)
ITEMS = 300
IDS = [f"A{i:03d}" for i in range(ITEMS)]


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    with fresh_database(postgres_server) as url:
        yield url


def start_replicas(server_factory, database_url: str, tmp_path: Path,
                   lease: float) -> list[ServerProcess]:
    env = {"DATABASE_URL": database_url, "DATABASE_POOL_SIZE": "4", "MAX_NEW_TOKENS": "24",
           "BATCH_SIZE": "5", "JOB_LEASE_SECONDS": str(lease), "SSE_POLLING_INTERVAL": "2"}
    servers = [server_factory(env={**env, "REPLICA_ID": name}, data_dir=tmp_path / name,
                              wait=False) for name in ("a", "b", "c")]
    for server in servers:
        server.wait_ready()
    return servers


def lease_of(database_url: str, job_id: str) -> tuple[str, str | None, int]:
    """(status, lease owner, attempts) of the job, read straight from the database."""
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT status, lease_owner, attempts FROM jobs WHERE id = %s",
                            (job_id,)).fetchone()


def completed(server: ServerProcess, job_id: str) -> int:
    return httpx.get(f"{server.url}/jobs/{job_id}", timeout=10).json()["counts"]["completed"]


def run_and_stop_a(servers: list[ServerProcess], database_url: str,
                   stop: str) -> tuple[str, list, float]:
    """Submit to A, follow on B, stop A mid-job (`kill`: SIGKILL, else SIGTERM); (job id,
    B's events, seconds from A's stop until B or C held the job)."""
    a, b, c = servers
    answer = httpx.post(f"{a.url}/evaluate", timeout=30,
                        json={"items": seed_items(ITEMS), "rubric": SHORT_RUBRIC})
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["job_id"]
    with ThreadPoolExecutor(1) as pool:
        followed = pool.submit(stream, b.url, job_id)
        a.wait_for(lambda: completed(c, job_id) >= 5, 900, "5 results graded on A")
        assert lease_of(database_url, job_id)[1] == "a"
        stopped_at = time.monotonic()
        if stop == "kill":
            a.kill()
        else:
            assert a.proc is not None
            a.proc.terminate()  # SIGTERM; the bundled model's in-flight steps end first
            # uvicorn re-raises the signal once its graceful shutdown is done
            assert a.proc.wait(120) in (0, -signal.SIGTERM), "A did not stop"
        assert completed(c, job_id) < ITEMS, "A finished before it was stopped: raise ITEMS"
        wait_for(lambda: lease_of(database_url, job_id)[1] in ("b", "c")
                 or lease_of(database_url, job_id)[0] == "completed", 120,
                 "B or C holding the job", interval=0.1)
        taken_over = time.monotonic() - stopped_at
        events = followed.result(timeout=3600)
    return job_id, events, taken_over


def assert_each_item_once(servers: list[ServerProcess], database_url: str, job_id: str,
                          events: list) -> None:
    _, b, c = servers
    assert events[-1].event == "complete", events[-1]
    assert events[-1].data["completed"] == ITEMS
    announced = [r["id_alumno"] for e in events if e.event == "batch_complete"
                 for r in e.data["results"]]
    assert len(announced) == len(set(announced)), "an item was announced twice"
    assert sorted(announced) == IDS
    event_ids = [int(e.id) for e in events]
    assert event_ids == sorted(set(event_ids))  # in order, each once
    results = httpx.get(f"{c.url}/jobs/{job_id}/results", timeout=30).json()["results"]
    assert sorted(r["id_alumno"] for r in results) == IDS
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT idx) FROM results "
                            "WHERE job_id = %s", (job_id,)).fetchone() == (ITEMS, ITEMS)
    assert httpx.get(f"{b.url}/jobs/{job_id}", timeout=10).json()["status"] == "completed"


def test_a_replica_killed_mid_job_is_taken_over_when_its_lease_runs_out(
        server_factory, database_url: str, tmp_path: Path) -> None:
    servers = start_replicas(server_factory, database_url, tmp_path, lease=6)
    job_id, events, _ = run_and_stop_a(servers, database_url, "kill")
    assert_each_item_once(servers, database_url, job_id, events)
    status, owner, attempts = lease_of(database_url, job_id)
    assert (status, owner) == ("completed", None)
    assert attempts == 2  # A's start, and the reclaim after its lease ran out


def test_a_replica_stopped_with_sigterm_hands_its_job_over_at_once(
        server_factory, database_url: str, tmp_path: Path) -> None:
    """Leases of ten minutes: the job moves to B or C within seconds of A's SIGTERM."""
    servers = start_replicas(server_factory, database_url, tmp_path, lease=600)
    job_id, events, taken_over = run_and_stop_a(servers, database_url, "term")
    assert taken_over < 30, f"taken over {taken_over:.1f} s after SIGTERM"
    assert_each_item_once(servers, database_url, job_id, events)
    assert lease_of(database_url, job_id)[2] == 1  # a handover is not an attempt
