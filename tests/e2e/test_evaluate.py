"""Seed 000 end to end on the real bundled model: POST /evaluate, SSE /stream, /jobs routes,
late and resuming subscribers, cancel, expiry, and every kind of bad input."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from typing import Any

import httpx
import pytest

from evalserve.client.sse import SSEMessage, parse_sse
from tests.e2e.server import ServerProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SEED_ITEM = {"id_alumno": "TEST_001", "curso": "3r ESO", "consigna": "Explica la fotosíntesi",
             "respuesta": "La fotosíntesi és quan les plantes fan menjar amb la llum del sol."}
PROGRESS_KEYS = {"completed", "total", "percentage", "elapsed_seconds",
                 "estimated_remaining_seconds", "avg_time_per_item"}


def seed_items(n: int, prefix: str = "A") -> list[dict[str, str]]:
    courses = ["1r ESO", "3r ESO", "1r Batxillerat"]
    return [{**SEED_ITEM, "id_alumno": f"{prefix}{i:03d}", "curso": courses[i % 3],
             "respuesta": f"{SEED_ITEM['respuesta']} ({i})"} for i in range(n)]


def stream(url: str, job_id: str, *, headers: dict | None = None, params: dict | None = None,
           stop_after: int | None = None) -> list[SSEMessage]:
    """Read the job's SSE stream to its final event (or `stop_after` events, then disconnect)."""
    out: list[SSEMessage] = []
    with httpx.stream("GET", f"{url}/stream/{job_id}", headers=headers, params=params,
                      timeout=httpx.Timeout(10, read=300)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in parse_sse(response.iter_lines()):
            out.append(message)
            if message.event in ("complete", "cancelled", "error"):
                break
            if stop_after is not None and len(out) >= stop_after:
                break
    return out


def submit(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/evaluate", json=body, timeout=30)


def assert_envelope(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    for fragment in fragments:
        assert fragment in error["message"], error["message"]


# --- one 25-item job followed by four subscribers ------------------------------------------


@pytest.fixture(scope="module")
def seed_job(live_server: ServerProcess) -> dict[str, Any]:
    url = live_server.url
    items = seed_items(25)
    answer = submit(url, {"items": items})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    active = httpx.get(f"{url}/health").json()["active_jobs"]
    job_id = body["job_id"]

    live: list[SSEMessage] = []
    resumed: list[SSEMessage] = []
    late: list[SSEMessage] = []

    def follow_all() -> None:
        live.extend(stream(url, job_id))

    def follow_resuming() -> None:
        first = stream(url, job_id, stop_after=1)
        resumed.extend(first)
        resumed.extend(stream(url, job_id, headers={"Last-Event-ID": first[-1].id}))

    def follow_late() -> None:
        wait_for(lambda: live, 300, "the first batch")
        late.extend(stream(url, job_id))

    threads = [threading.Thread(target=f) for f in (follow_all, follow_resuming, follow_late)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    by_query = stream(url, job_id, params={"last_event_id": "2"})
    return {"url": url, "items": items, "answer": body, "active": active, "live": live,
            "resumed": resumed, "late": late, "by_query": by_query}


def test_evaluate_answers_the_seed_shape(seed_job: dict) -> None:
    body = seed_job["answer"]
    assert set(body) == {"job_id", "total_items", "estimated_time_seconds", "status",
                         "stream_url"}
    assert body["total_items"] == 25 and body["status"] == "queued"
    assert body["stream_url"] == f"/stream/{body['job_id']}"
    assert isinstance(body["estimated_time_seconds"], int) and body["estimated_time_seconds"] > 0
    assert seed_job["active"] >= 1


def test_stream_events_follow_the_seed(seed_job: dict) -> None:
    events = seed_job["live"]
    assert [e.event for e in events] == ["batch_complete"] * 3 + ["complete"]
    assert [int(e.id) for e in events] == [1, 2, 3, 4]
    previous = {"completed": 0, "percentage": 0.0, "elapsed_seconds": 0.0}
    seen: list[str] = []
    for number, event in enumerate(events[:-1], 1):
        data = event.data
        assert set(data) == {"batch_number", "results", "progress"}
        assert data["batch_number"] == number
        for result in data["results"]:
            assert {"id_alumno", "nota", "feedback"} <= set(result)
            assert isinstance(result["nota"], int) and 0 <= result["nota"] <= 5, result
            assert isinstance(result["feedback"], str) and result["feedback"].strip(), result
            seen.append(result["id_alumno"])
        progress = data["progress"]
        assert set(progress) == PROGRESS_KEYS
        assert all(isinstance(progress[k], int | float) for k in PROGRESS_KEYS)
        assert progress["total"] == 25 and progress["completed"] == len(seen)
        for key in previous:
            assert progress[key] >= previous[key], (key, progress)
            previous[key] = progress[key]
        assert progress["percentage"] == round(100 * len(seen) / 25, 1)
        assert progress["avg_time_per_item"] > 0
    assert [len(e.data["results"]) for e in events[:-1]] == [10, 10, 5]
    assert events[-2].data["progress"]["percentage"] == 100.0
    assert events[-2].data["progress"]["estimated_remaining_seconds"] == 0
    assert sorted(seen) == sorted(i["id_alumno"] for i in seed_job["items"])
    final = events[-1].data
    assert final["job_id"] == seed_job["answer"]["job_id"] and final["status"] == "completed"
    assert (final["total"], final["completed"]) == (25, 25)
    assert final["scored"] + final["unscored"] == 25 and final["scored"] == 25
    assert final["elapsed_seconds"] >= events[-2].data["progress"]["elapsed_seconds"]


def _signature(events: list[SSEMessage]) -> list[tuple]:
    return [(e.id, e.event, json.dumps(e.data, sort_keys=True)) for e in events]


def test_late_and_resuming_subscribers_see_every_event_once(seed_job: dict) -> None:
    live = _signature(seed_job["live"])
    assert _signature(seed_job["late"]) == live
    assert _signature(seed_job["resumed"]) == live
    assert _signature(seed_job["by_query"]) == live[2:]


def test_job_detail_list_and_health(seed_job: dict) -> None:
    url, job_id = seed_job["url"], seed_job["answer"]["job_id"]
    job = httpx.get(f"{url}/jobs/{job_id}").json()
    assert job["status"] == "completed" and job["rubric"] == "teacher-eval-ca"
    assert job["counts"] == {"total": 25, "completed": 25, "scored": 25, "unscored": 0,
                             "errors": 0, "percentage": 100.0}
    notes = [r["nota"] for e in seed_job["live"][:-1] for r in e.data["results"]]
    assert job["mean_score"] == pytest.approx(sum(notes) / 25, abs=1e-3)
    timings = job["timings"]
    assert timings["created_at"] <= timings["started_at"] <= timings["finished_at"]
    assert timings["elapsed_seconds"] > 0
    listed = httpx.get(f"{url}/jobs", params={"status": "completed", "limit": 100}).json()
    assert job_id in [j["job_id"] for j in listed["jobs"]]
    assert all(j["status"] == "completed" for j in listed["jobs"])
    queued = httpx.get(f"{url}/jobs", params={"status": "queued"}).json()["jobs"]
    assert job_id not in [j["job_id"] for j in queued]
    assert httpx.get(f"{url}/health").json()["active_jobs"] == 0


def test_results_in_three_formats(seed_job: dict) -> None:
    url, job_id = seed_job["url"], seed_job["answer"]["job_id"]
    streamed = {r["id_alumno"]: r for e in seed_job["live"][:-1] for r in e.data["results"]}
    as_json = httpx.get(f"{url}/jobs/{job_id}/results").json()
    assert as_json["job_id"] == job_id and as_json["status"] == "completed"
    assert [r["id_alumno"] for r in as_json["results"]] == [f"A{i:03d}" for i in range(25)]
    assert all(r == streamed[r["id_alumno"]] for r in as_json["results"])
    jsonl = httpx.get(f"{url}/jobs/{job_id}/results", params={"format": "jsonl"})
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in jsonl.text.splitlines()] == as_json["results"]
    as_csv = httpx.get(f"{url}/jobs/{job_id}/results", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["id_alumno"], int(r["nota"]), r["feedback"]) for r in rows] == \
        [(r["id_alumno"], r["nota"], r["feedback"]) for r in as_json["results"]]


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_a_running_job(live_server: ServerProcess) -> None:
    url = live_server.url
    job_id = submit(url, {"items": seed_items(40, "C")}).json()["job_id"]
    wait_for(lambda: httpx.get(f"{url}/jobs/{job_id}").json()["status"] == "running", 120,
             "the job running")
    started = time.monotonic()
    cancelled = httpx.delete(f"{url}/jobs/{job_id}", timeout=60)
    assert cancelled.status_code == 200, cancelled.text
    assert time.monotonic() - started < 30  # in-flight items are aborted, not waited for
    job = cancelled.json()
    assert job["status"] == "cancelled" and job["timings"]["finished_at"]
    assert job["counts"]["completed"] < 40
    events = stream(url, job_id)
    assert events[-1].event == "cancelled"
    assert events[-1].data["status"] == "cancelled"
    assert events[-1].data["completed"] == job["counts"]["completed"]
    streamed = [r["id_alumno"] for e in events[:-1] for r in e.data["results"]]
    results = httpx.get(f"{url}/jobs/{job_id}/results").json()["results"]
    assert sorted(streamed) == sorted(r["id_alumno"] for r in results)
    assert len(results) == job["counts"]["completed"]
    assert_envelope(httpx.delete(f"{url}/jobs/{job_id}"), 409, "already cancelled")


# --- bad input -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Small limits and a short TTL (for the limit and expiry tests)."""
    server = ServerProcess(tmp_path_factory.mktemp("strict") / "data", env={
        "MAX_ITEMS_PER_JOB": "3", "MAX_FIELD_CHARS": "200", "JOB_TTL_SECONDS": "2",
        "CLEANUP_INTERVAL_SECONDS": "1", "MAX_NEW_TOKENS": "16"}).start()
    yield server
    server.stop()


BAD_BODIES = [
    ({"items": []}, "items is empty"),
    ({}, "items: Field required"),
    ({"items": [{**SEED_ITEM}, {k: v for k, v in SEED_ITEM.items() if k != "respuesta"}]},
     "items[1] lacks the field(s) ['respuesta']"),
    ({"items": [{**SEED_ITEM, "edat": 14}]}, "items[0] has unknown field(s) ['edat']"),
    ({"items": [{**SEED_ITEM, "respuesta": ["a", "b"]}]}, "items[0].respuesta must be a string"),
    ({"items": ["just text"]}, "items[0] must be an object"),
    ({"items": [SEED_ITEM, dict(SEED_ITEM)]}, "repeats items[0]"),
    ({"items": [SEED_ITEM], "rubric": "no-such-rubric"}, "no rubric named 'no-such-rubric'"),
    ({"items": [SEED_ITEM], "rubric": {"name": "x", "template": "{a}", "fields": ["a"],
                                       "scale": [1]}}, "scale"),
    ({"items": [SEED_ITEM], "priority": "high"}, "priority: Extra inputs are not permitted"),
    ({"items": [SEED_ITEM], "metrics": "rouge"}, "metrics"),
]


@pytest.mark.parametrize(("body", "fragment"), BAD_BODIES)
def test_bad_input_is_refused_and_nothing_is_stored(live_server: ServerProcess, body: dict,
                                                    fragment: str) -> None:
    url = live_server.url
    before = len(httpx.get(f"{url}/jobs", params={"limit": 1000}).json()["jobs"])
    response = submit(url, body)
    assert response.status_code in (404, 422), response.text
    assert_envelope(response, response.status_code, fragment)
    assert len(httpx.get(f"{url}/jobs", params={"limit": 1000}).json()["jobs"]) == before


def test_limits_on_items_and_field_length(strict_server: ServerProcess) -> None:
    url = strict_server.url
    assert_envelope(submit(url, {"items": seed_items(4)}), 422, "4 items exceed the limit of 3",
                    "MAX_ITEMS_PER_JOB")
    long = {**SEED_ITEM, "respuesta": "x" * 201}
    assert_envelope(submit(url, {"items": [SEED_ITEM | {"id_alumno": "B"}, long]}), 422,
                    "items[1].respuesta has 201 characters", "MAX_FIELD_CHARS")
    assert httpx.get(f"{url}/jobs").json()["jobs"] == []


def test_unknown_job_and_bad_parameters(live_server: ServerProcess) -> None:
    url = live_server.url
    for response in (httpx.get(f"{url}/stream/nope"), httpx.get(f"{url}/jobs/nope"),
                     httpx.get(f"{url}/jobs/nope/results"), httpx.delete(f"{url}/jobs/nope")):
        assert_envelope(response, 404, "no job 'nope'")
    assert_envelope(httpx.get(f"{url}/jobs", params={"status": "sleeping"}), 422, "status")
    assert_envelope(httpx.get(f"{url}/jobs", params={"limit": 0}), 422, "limit")
    job_id = submit(url, {"items": [SEED_ITEM | {"id_alumno": "P1"}]}).json()["job_id"]
    assert_envelope(httpx.get(f"{url}/jobs/{job_id}/results", params={"format": "xml"}), 422,
                    "format")
    assert_envelope(httpx.get(f"{url}/stream/{job_id}", headers={"Last-Event-ID": "abc"}), 422,
                    "Last-Event-ID 'abc' is not an event id")
    assert stream(url, job_id)[-1].event == "complete"


# --- expiry ----------------------------------------------------------------------------------


def test_finished_jobs_expire(strict_server: ServerProcess) -> None:
    url = strict_server.url
    job_id = submit(url, {"items": [SEED_ITEM]}).json()["job_id"]
    events = stream(url, job_id)
    assert events[-1].event == "complete"
    assert httpx.get(f"{url}/jobs/{job_id}").status_code == 200
    wait_for(lambda: httpx.get(f"{url}/jobs/{job_id}").status_code == 404, 30, "expiry")
    assert_envelope(httpx.get(f"{url}/jobs/{job_id}/results"), 404, "expired")
    assert_envelope(httpx.get(f"{url}/stream/{job_id}"), 404, "no job")
