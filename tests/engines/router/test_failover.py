"""Failover: a failing endpoint (connection error, 5xx, timeout) is taken out and the request
served by another endpoint or a fallback model; a 4xx is passed on, not retried; a 429 is
tried elsewhere; a stream fails over only before its first token."""

from __future__ import annotations

import asyncio

import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.errors import (
    InvalidInputError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from tests.engines.router.fakes import Fleet, models
from tests.waiting import wait_until

A, B, C = "http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1"


def ask(model: str | None = None) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "hi"}], model=model,
                             max_tokens=4)


async def text_of(stream) -> str:  # noqa: ANN001
    return "".join([d.text async for d in stream])


@pytest.mark.parametrize("mode", ["down", "5xx", "timeout"])
async def test_a_failing_endpoint_is_taken_out_and_the_request_served_elsewhere(
        mode: str) -> None:
    fleet = Fleet(models(("judge", [A, B])))
    fleet[A].mode = mode if mode != "down" else "down"
    fleet[B].mode = "ok"
    results = [await fleet.router.generate(ask()) for _ in range(6)]
    assert {r.text for r in results} == {B}
    assert fleet[A].count == (0 if mode == "down" else 1)  # tried once, then out of rotation
    assert fleet[B].count == 6
    status = {s.url: s for s in (await fleet.router.health()).endpoints}
    assert status[A].healthy is False and status[B].healthy is True
    assert status[A].last_error


async def test_a_client_error_is_passed_on_not_retried() -> None:
    fleet = Fleet(models(("judge", [A, B]), ("spare", [C], [])))
    fleet[A].mode = fleet[B].mode = "4xx"
    with pytest.raises(InvalidInputError, match="upstream: prompt too long") as info:
        await fleet.router.generate(ask())
    assert info.value.status == 400
    assert fleet[A].count + fleet[B].count == 1
    assert all(e.healthy for e in fleet.router.endpoints)


async def test_a_429_is_tried_elsewhere_without_taking_the_endpoint_out() -> None:
    fleet = Fleet(models(("judge", [A, B])))
    fleet[A].mode = "429"
    assert [(await fleet.router.generate(ask())).text for _ in range(2)] == [B, B]
    assert fleet.endpoint(A).healthy
    fleet[B].mode = "429"
    with pytest.raises(RateLimitError, match="every endpoint failed.*slow down") as info:
        await fleet.router.generate(ask())
    assert info.value.retry_after == 3


async def test_fallbacks_answer_when_the_model_cannot_breadth_first() -> None:
    fleet = Fleet(models(("judge", [A], ["middle", "spare"]), ("middle", [B], ["last"]),
                         ("spare", [C]), ("last", ["http://d:8000/v1"])))
    fleet[A].mode = fleet[B].mode = "down"
    assert (await fleet.router.generate(ask())).text == C
    assert [b["model"] for b in fleet[C].bodies] == ["spare"]
    fleet[C].mode = "5xx"
    assert (await fleet.router.generate(ask())).text == "http://d:8000/v1"
    # judge's endpoint is out of rotation: the next request goes straight to a fallback
    assert fleet[A].count == 0 and not fleet.endpoint(A).healthy


async def test_when_nothing_answers_the_last_error_keeps_its_status() -> None:
    fleet = Fleet(models(("judge", [A, B])))
    fleet[A].mode, fleet[B].mode = "5xx", "timeout"
    with pytest.raises(UpstreamTimeoutError) as info:
        await fleet.router.generate(ask())
    assert info.value.status == 504
    assert f"every endpoint failed (judge at {A}, judge at {B})" in info.value.message
    assert not (await fleet.router.health()).loaded
    # both out of rotation: the next request still tries each once, as a last resort
    fleet[B].mode = "5xx"
    with pytest.raises(UpstreamError, match="upstream 503") as info:
        await fleet.router.generate(ask())
    assert info.value.status == 502 and (fleet[A].count, fleet[B].count) == (2, 2)


async def test_an_endpoint_out_of_rotation_that_answers_a_last_resort_is_back_in() -> None:
    fleet = Fleet(models(("judge", [A], ["spare"]), ("spare", [B])))
    fleet[A].mode = fleet[B].mode = "down"
    with pytest.raises(UpstreamError):
        await fleet.router.generate(ask())
    fleet[B].mode = "ok"  # back before any probe noticed
    assert (await fleet.router.generate(ask())).text == B
    assert fleet.endpoint(B).healthy and not fleet.endpoint(A).healthy


async def test_a_failure_while_others_wait_for_a_slot_sends_them_on() -> None:
    fleet = Fleet(models(("judge", [{"url": A, "max_concurrency": 1}], ["spare"]),
                         ("spare", [B])))
    hold = asyncio.Event()
    fleet[A].hold = hold
    first = asyncio.create_task(fleet.router.generate(ask()))
    await wait_until(lambda: fleet[A].waiting == 1, what="the first request at A")
    second = asyncio.create_task(fleet.router.generate(ask()))
    await wait_until(lambda: fleet.router.pools["judge"].waiting == 1, what="a waiter")
    fleet[A].mode = "5xx"
    hold.set()
    assert [r.text for r in await asyncio.gather(first, second)] == [B, B]


async def test_a_stream_fails_over_before_its_first_token() -> None:
    fleet = Fleet(models(("judge", [A, B])))
    fleet[A].mode = "5xx"
    assert await text_of(fleet.router.stream(ask())) == B
    assert not fleet.endpoint(A).healthy and fleet.endpoint(B).in_flight == 0


async def test_a_stream_that_already_sent_tokens_is_not_retried() -> None:
    fleet = Fleet(models(("judge", [{"url": A, "weight": 5}, B])))
    fleet[A].mode = "broken-stream"
    got: list[str] = []
    with pytest.raises(UpstreamError, match="stream broke"):
        async for delta in fleet.router.stream(ask()):
            got.append(delta.text)
    assert got == [A, A] and fleet[B].count == 0
    assert not fleet.endpoint(A).healthy  # out of rotation all the same


async def test_an_aborted_request_is_not_sent_anywhere_else() -> None:
    fleet = Fleet(models(("judge", [A, B])))
    fleet[A].hold = fleet[B].hold = asyncio.Event()
    request = ask()
    task = asyncio.create_task(fleet.router.generate(request))
    await wait_until(lambda: fleet[A].waiting + fleet[B].waiting == 1, what="in flight")
    await fleet.router.abort(request.request_id)
    result = await task
    assert result.outputs[0].finish_reason == "abort"
    assert fleet[A].count + fleet[B].count == 1
    assert all(e.healthy and e.in_flight == 0 for e in fleet.router.endpoints)
    await fleet.router.abort("unknown")  # a no-op


async def test_a_request_aborted_while_it_waits_for_a_slot_is_never_sent() -> None:
    fleet = Fleet(models(("judge", [{"url": A, "max_concurrency": 1}])))
    hold = asyncio.Event()
    fleet[A].hold = hold
    first = asyncio.create_task(fleet.router.generate(ask()))
    await wait_until(lambda: fleet[A].waiting == 1, what="the first request at A")
    waiting = ask()
    second = asyncio.create_task(fleet.router.generate(waiting))
    await wait_until(lambda: fleet.router.pools["judge"].waiting == 1, what="a waiter")
    await fleet.router.abort(waiting.request_id)
    hold.set()
    await first
    assert (await second).outputs[0].finish_reason == "abort"
    assert fleet[A].count == 1 and fleet.endpoint(A).in_flight == 0
