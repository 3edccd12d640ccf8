"""Items fail alone: transient engine errors retried per item with backoff, then `error` items;
the job completes with `{scored, unscored, errors}` (jobs/execution.py through the runner)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

from evalserve.engines.base import GenerationRequest
from evalserve.errors import RateLimitError, UpstreamError, UpstreamTimeoutError
from evalserve.jobs.models import JobStatus
from evalserve.jobs.retry import RetryPolicy
from tests.fakes import request_text
from tests.jobs.helpers import answer, collect, engine, items, running_service


class Flaky:
    """A script failing chosen items: `plan[i]` is the list of errors item i raises on its
    first calls (then it answers); counts the calls per item."""

    def __init__(self, plan: dict[int, list[BaseException]]) -> None:
        self.plan = {i: list(errors) for i, errors in plan.items()}
        self.calls: Counter[int] = Counter()

    def __call__(self, request: GenerationRequest) -> str:
        index = int(re.findall(r"\((\d+)\)", request_text(request))[-1])
        self.calls[index] += 1
        if self.plan.get(index):
            raise self.plan[index].pop(0)
        return answer(4)


def instant_retries(service, retries: int = 3) -> list[float]:  # noqa: ANN001
    """Give the runner a retry policy that records its backoffs instead of sleeping."""
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(0)

    service.runner.item_retry = RetryPolicy(retries, 0.5, sleep=sleep, rand=lambda: 1.0)
    return waited


async def test_transient_failures_are_retried_and_an_item_that_still_fails_is_an_error(
        tmp_path: Path) -> None:
    """Regression: one item's upstream 502/504 (or 429) failed the whole job. Now it is retried
    with backoff (ITEM_RETRIES), and an item that still fails is stored `error` with the
    reason while the job completes."""
    script = Flaky({
        1: [UpstreamError("upstream 502: bad gateway"), ConnectionError("reset")],
        2: [UpstreamTimeoutError("upstream 504: slow")] * 10,
        3: [RateLimitError("upstream: slow down", retry_after=7)],
    })
    async with running_service(tmp_path, engine(script=script, capacity=2), start=False,
                               batch_size=10) as service:
        waited = instant_retries(service, retries=3)
        await service.runner.start()
        sub = await service.submit(items(5))
        events = await collect(service, sub.job.id)
        job = await service.get(sub.job.id)
        _, chunks = await service.export(sub.job.id, "json")
        body = "".join([c async for c in chunks])

    assert job.status is JobStatus.COMPLETED and job.error is None
    assert (job.completed, job.scored, job.unscored, job.errors) == (5, 4, 0, 1)
    assert dict(script.calls) == {0: 1, 1: 3, 2: 4, 3: 2, 4: 1}
    results = {r["id_alumno"]: r for r in events[0].data["results"]}
    failed = results["A002"]
    assert failed["status"] == "error" and failed["nota"] is None
    assert failed["error"] == {"message": "upstream 504: slow", "type": "upstream_error",
                               "code": "gateway_timeout"}
    assert failed["reason"] == "upstream 504: slow" and failed["attempts"] == 4
    assert {results[k]["status"] for k in ("A000", "A001", "A003", "A004")} == {"scored"}
    final = events[-1]
    assert final.type == "complete" and final.final
    assert (final.data["scored"], final.data["unscored"], final.data["errors"]) == (4, 0, 1)
    assert final.data["mean_score"] == 4.0
    # Exponential backoff (rand=1.0: the full step): item 1 twice, item 2 three times, and
    # the 429 waits at least its Retry-After.
    assert sorted(waited) == [0.5, 0.5, 1.0, 1.0, 2.0, 7.0]
    assert '"status":"error"' in body.replace(" ", "")


async def test_an_item_failing_for_a_non_transient_reason_is_an_error_at_once(
        tmp_path: Path) -> None:
    """A bug in one item's grading (not an engine hiccup) is not retried, and fails only it."""
    script = Flaky({0: [ValueError("odd item")]})
    async with running_service(tmp_path, engine(script=script), start=False) as service:
        waited = instant_retries(service)
        await service.runner.start()
        sub = await service.submit(items(2))
        events = await collect(service, sub.job.id)
    assert script.calls == Counter({0: 1, 1: 1})
    assert waited == []
    record = next(r for e in events[:-1] for r in e.data["results"] if r["id_alumno"] == "A000")
    assert record["status"] == "error" and record["attempts"] == 1
    assert record["error"]["message"] == "ValueError: odd item"
    assert events[-1].type == "complete" and events[-1].data["errors"] == 1


async def test_no_slot_is_held_while_an_item_backs_off(tmp_path: Path) -> None:
    """A failing item waits for its retry without an engine slot: others keep the engine."""
    script = Flaky({0: [UpstreamError("upstream 503: busy")]})
    async with running_service(tmp_path, engine(script=script, capacity=1),
                               start=False) as service:
        held: list[int] = []

        async def sleep(seconds: float) -> None:
            held.append(service.runner.slots.held())

        service.runner.item_retry = RetryPolicy(2, 0.5, sleep=sleep)
        await service.runner.start()
        sub = await service.submit(items(3))
        await collect(service, sub.job.id)
        job = await service.get(sub.job.id)
    assert held == [0]
    assert (job.scored, job.errors) == (3, 0)
