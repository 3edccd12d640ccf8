"""`evalserve serve` on PostgreSQL (`DATABASE_URL`) with the real bundled model: a small job
submitted, streamed and fetched; the server stopped and another started on the same database
with an empty `DATA_DIR`: the job is still listed, with the same results and the same
stream (the jobs live in PostgreSQL, not on the replica's disk)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.server import ServerProcess
from tests.e2e.test_evaluate import seed_items, stream
from tests.e2e.test_jobs_resume import SHORT_RUBRIC
from tests.postgres_server import (
    PASSWORD,
    PostgresServer,
    fresh_database,
    postgres_server_fixture,
)

pytestmark = pytest.mark.e2e

postgres_server = pytest.fixture(scope="module")(postgres_server_fixture)
ITEMS = 4


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    with fresh_database(postgres_server) as url:
        yield url


def test_a_job_on_postgres_outlives_its_server(server_factory, database_url: str,
                                               tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "DATABASE_POOL_SIZE": "4", "MAX_NEW_TOKENS": "24",
           "BATCH_SIZE": "2"}
    first: ServerProcess = server_factory(env=env, data_dir=tmp_path / "first")
    answer = httpx.post(f"{first.url}/evaluate", timeout=30,
                        json={"items": seed_items(ITEMS), "rubric": SHORT_RUBRIC})
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["job_id"]
    events = stream(first.url, job_id)
    assert events[-1].event == "complete" and events[-1].data["completed"] == ITEMS
    announced = [r["id_alumno"] for e in events if e.event == "batch_complete"
                 for r in e.data["results"]]
    assert sorted(announced) == [f"A{i:03d}" for i in range(ITEMS)]
    results = httpx.get(f"{first.url}/jobs/{job_id}/results").json()["results"]
    assert sorted(r["id_alumno"] for r in results) == sorted(announced)
    assert all(isinstance(r["nota"], int) or r["status"] == "unscored" for r in results)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM results WHERE job_id = %s",
                            (job_id,)).fetchone() == (ITEMS,)
    assert not (tmp_path / "first" / "evalserve.db").exists()
    assert PASSWORD not in first.log_path.read_text(errors="replace")
    first.stop()

    second = server_factory(env=env, data_dir=tmp_path / "second")
    listed = httpx.get(f"{second.url}/jobs").json()["jobs"]
    assert [(j["job_id"], j["status"]) for j in listed] == [(job_id, "completed")]
    assert httpx.get(f"{second.url}/jobs/{job_id}/results").json()["results"] == results
    replayed = stream(second.url, job_id)
    assert [(e.id, e.event, e.data) for e in replayed] == \
        [(e.id, e.event, e.data) for e in events]
    assert httpx.get(f"{second.url}/health").json()["active_jobs"] == 0
