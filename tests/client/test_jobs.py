"""`evalserve.client.jobs.JobsClient` against canned answers (a live server:
tests/cli/test_evaluate.py and tests/e2e)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from evalserve.client.jobs import JobsClient
from evalserve.errors import ConflictError, InvalidInputError, NotFoundError, UpstreamError

STREAM = (
    "id: 1\r\nevent: batch_complete\r\ndata: {\"batch_number\": 1}\r\n\r\n"
    ": ping\r\n\r\n"
    "id: 2\r\nevent: complete\r\ndata: {\"status\": \"completed\"}\r\n\r\n"
    "id: 3\r\nevent: batch_complete\r\ndata: {\"after\": \"the end\"}\r\n\r\n"
)


def _envelope(status: int, message: str, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message,
                                                  "type": "invalid_request_error",
                                                  "code": code}})


def _jobs(handler: Callable[[httpx.Request], httpx.Response], token: str | None = "tk"
          ) -> JobsClient:
    return JobsClient("http://srv:8000/", token, transport=httpx.MockTransport(handler))


async def test_submit_follow_results_and_job() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/evaluate":
            return httpx.Response(200, json={"job_id": "j1", "total_items": 1})
        if request.url.path == "/stream/j1":
            return httpx.Response(200, text=STREAM,
                                  headers={"content-type": "text/event-stream"})
        if request.url.path == "/jobs/j1/results":
            return httpx.Response(200, text='{"id": 1}\n')
        return httpx.Response(200, json={"id": "j1", "status": "completed"})

    async with _jobs(handler) as jobs:
        answer = await jobs.submit([{"q": "a"}], "rubric-x", metrics=None, max_tokens=5)
        events = [m async for m in jobs.follow("j1", last_event_id=4)]
        text = await jobs.results("j1", "jsonl")
        job = await jobs.job("j1")
    assert answer["job_id"] == "j1" and text == '{"id": 1}\n' and job["status"] == "completed"
    assert json.loads(seen[0].content) == {"items": [{"q": "a"}], "rubric": "rubric-x",
                                           "max_tokens": 5}
    # the stream ends at its final event; what follows is not read
    assert [(m.id, m.event) for m in events] == [("1", "batch_complete"), ("2", "complete")]
    assert seen[1].headers["last-event-id"] == "4"
    assert seen[2].url.params["format"] == "jsonl"
    assert {r.headers["authorization"] for r in seen} == {"Bearer tk"}
    assert str(seen[0].url) == "http://srv:8000/evaluate"


@pytest.mark.parametrize(("response", "error", "message"), [
    (_envelope(422, "items[0] lacks the field(s) ['consigna']", "invalid_input"),
     InvalidInputError, "items[0] lacks the field(s) ['consigna']"),
    (_envelope(409, "job j1 is already finished", "conflict"),
     ConflictError, "job j1 is already finished"),
    (_envelope(404, "no job j1", "not_found"), NotFoundError, "no job j1"),
    (httpx.Response(500, text="boom"), UpstreamError,
     "http://srv:8000/evaluate answered 500: HTTP 500: boom"),
])
async def test_error_answers_become_library_errors(response: httpx.Response,
                                                   error: type[Exception], message: str) -> None:
    async with _jobs(lambda request: response) as jobs:
        with pytest.raises(error) as info:
            await jobs.submit([{"q": "a"}])
    assert info.value.message == message  # type: ignore[attr-defined]
    assert type(info.value) is error


async def test_a_stream_that_is_refused_raises_before_any_event() -> None:
    async with _jobs(lambda request: _envelope(404, "no job j9", "not_found")) as jobs:
        with pytest.raises(NotFoundError, match="no job j9"):
            [m async for m in jobs.follow("j9")]


async def test_an_unreachable_server_is_an_upstream_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with _jobs(handler, token=None) as jobs:
        with pytest.raises(UpstreamError, match="cannot reach evalserve at http://srv:8000"):
            await jobs.submit([{"q": "a"}])
        with pytest.raises(UpstreamError, match="cannot reach evalserve"):
            [m async for m in jobs.follow("j1")]


async def test_rubric_is_none_when_the_server_lacks_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/rubrics/known":
            return httpx.Response(200, json={"name": "known", "scale": [0, 1]})
        return _envelope(404, "no rubric", "not_found")

    async with _jobs(handler) as jobs:
        assert await jobs.rubric("known") == {"name": "known", "scale": [0, 1]}
        assert await jobs.rubric("other") is None


async def test_retry_posts_and_maps_a_409() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/jobs/j1/retry":
            return httpx.Response(200, json={"job_id": "j1", "status": "queued"})
        return _envelope(409, "job j2 has no error items to retry", "conflict")

    async with _jobs(handler) as jobs:
        view = await jobs.retry("j1", unscored=True)
        with pytest.raises(ConflictError, match="no error items to retry"):
            await jobs.retry("j2")
    assert view == {"job_id": "j1", "status": "queued"}
    assert [(r.method, r.url.path, r.url.query) for r in seen] == [
        ("POST", "/jobs/j1/retry", b"unscored=true"), ("POST", "/jobs/j2/retry", b"")]


async def test_agreement_gets_the_section_and_maps_a_404() -> None:
    seen: list[str] = []
    section = {"job_id": "j1", "status": "completed", "score": {"qwk": 0.8},
               "score_expected": None}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/jobs/j1/agreement":
            return httpx.Response(200, json=section)
        return _envelope(404, "job j2 has no human grades to compare with", "not_found")

    async with _jobs(handler) as jobs:
        assert await jobs.agreement("j1") == section
        with pytest.raises(NotFoundError, match="no human grades"):
            await jobs.agreement("j2")
    assert seen == ["/jobs/j1/agreement", "/jobs/j2/agreement"]
