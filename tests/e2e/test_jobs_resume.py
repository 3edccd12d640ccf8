"""A crash mid-job (SIGKILL) loses nothing and grades nothing twice once the server restarts."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.e2e.test_evaluate import seed_items, stream
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

ITEMS = 200
#: teacher-eval-ca with a short feedback, so that MAX_NEW_TOKENS=24 holds a whole answer.
SHORT_RUBRIC = {
    "name": "teacher-eval-ca-short",
    "instructions": "Ets un professor. Posa una nota de {scale_min} a {scale_max} i un "
                    "feedback molt breu en català.",
    "template": "Curs: {curso}\nConsigna: {consigna}\nResposta: {respuesta}",
    "fields": ["id_alumno", "curso", "consigna", "respuesta"],
    "id_field": "id_alumno",
    "scale": [0, 1, 2, 3, 4, 5],
    "language": "ca",
    "score_field": "nota",
    "feedback_field": "feedback",
    "max_feedback_chars": 20,
}
ENV = {"MAX_NEW_TOKENS": "24", "BATCH_SIZE": "10"}


def stored_results(db: Path, job_id: str) -> list[tuple[str, float]]:
    """(item id, stored at) of every result row, read straight from the job database."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT item_id, created_at FROM results WHERE job_id = ?",
                            (job_id,)).fetchall()


def test_sigkill_mid_job_then_restart_completes_each_item_once(server_factory,
                                                               tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first: ServerProcess = server_factory(env=ENV, data_dir=data_dir)
    answer = httpx.post(f"{first.url}/evaluate", timeout=30,
                        json={"items": seed_items(ITEMS), "rubric": SHORT_RUBRIC}).json()
    job_id = answer["job_id"]
    wait_for(lambda: httpx.get(f"{first.url}/jobs/{job_id}").json()["counts"]["completed"] >= 30,
             600, "30 results before the crash")
    first.kill()
    killed_at = time.time()
    db = data_dir / "evalserve.db"
    before = stored_results(db, job_id)
    assert 30 <= len(before) < ITEMS

    second = server_factory(env=ENV, data_dir=data_dir)
    assert httpx.get(f"{second.url}/health").json()["active_jobs"] == 1
    events = stream(second.url, job_id)
    assert events[-1].event == "complete", events[-1]
    assert events[-1].data["completed"] == ITEMS

    results = httpx.get(f"{second.url}/jobs/{job_id}/results").json()["results"]
    ids = [r["id_alumno"] for r in results]
    assert len(ids) == ITEMS and len(set(ids)) == ITEMS
    assert all(isinstance(r["nota"], int) or r["status"] == "unscored" for r in results)
    after = [row for row in stored_results(db, job_id) if row[1] > killed_at]
    assert len(before) + len(after) == ITEMS
    # The stream (replayed from the first event) announces every item exactly once.
    announced = [r["id_alumno"] for e in events if e.event == "batch_complete"
                 for r in e.data["results"]]
    assert sorted(announced) == sorted(ids)
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
    job = httpx.get(f"{second.url}/jobs/{job_id}").json()
    assert job["status"] == "completed" and job["counts"]["completed"] == ITEMS
    assert httpx.get(f"{second.url}/health").json()["active_jobs"] == 0
