"""Routing by `GenerationRequest.model` and the least-loaded choice: in-flight ÷ weight within
`max_concurrency`, weights followed one request at a time and many at once."""

from __future__ import annotations

import asyncio

import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.errors import NotFoundError
from tests.engines.router.fakes import Fleet, models
from tests.waiting import wait_until

A, B, C = "http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1"


def ask(model: str | None = None, text: str = "hi") -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], model=model,
                             max_tokens=4)


async def test_models_lists_every_routed_model_and_the_default_is_the_model_id() -> None:
    fleet = Fleet(models(("small", [A]), ("large", [B]), ("other", [C]),
                         default_model="large"))
    router = fleet.router
    assert router.model_id == "large"
    assert [m.id for m in await router.models()] == ["large", "small", "other"]
    assert router.capacity == 64 and router.supports_logprobs and router.supports_constraints


async def test_requests_go_to_their_model_with_its_upstream_name() -> None:
    fleet = Fleet(models(("judge", [{"url": A, "upstream_model": "org/Llama-3-8B"}]),
                         ("other", [B])))
    named = await fleet.router.generate(ask("other"))
    default = await fleet.router.generate(ask(None))
    assert (named.text, default.text) == (B, A)
    assert [b["model"] for b in fleet[A].bodies] == ["org/Llama-3-8B"]
    assert [b["model"] for b in fleet[B].bodies] == ["other"]


async def test_an_unknown_model_is_not_found_and_the_error_lists_the_models() -> None:
    fleet = Fleet(models(("judge", [A]), ("other", [B])))
    with pytest.raises(NotFoundError, match="'nope' is not routed here; routed models: "
                                            "judge, other") as info:
        await fleet.router.generate(ask("nope"))
    assert info.value.code == "model_not_found"
    with pytest.raises(NotFoundError):
        await anext(fleet.router.stream(ask("nope")))


async def test_sequential_requests_follow_the_weights_exactly() -> None:
    fleet = Fleet(models(("judge", [{"url": A, "weight": 1}, {"url": B, "weight": 2},
                                    {"url": C, "weight": 3}])))
    for _ in range(60):
        await fleet.router.generate(ask())
    assert (fleet[A].count, fleet[B].count, fleet[C].count) == (10, 20, 30)


async def test_concurrent_requests_are_spread_by_in_flight_over_weight() -> None:
    fleet = Fleet(models(("judge", [{"url": A, "weight": 1}, {"url": B, "weight": 3}])))
    hold = asyncio.Event()
    fleet[A].hold = fleet[B].hold = hold
    tasks = [asyncio.create_task(fleet.router.generate(ask())) for _ in range(40)]
    await wait_until(lambda: fleet[A].waiting + fleet[B].waiting == 40, what="40 in flight")
    assert (fleet[A].waiting, fleet[B].waiting) == (10, 30)
    assert fleet.router.queue_depth == 40
    hold.set()
    assert len(await asyncio.gather(*tasks)) == 40
    assert fleet.router.queue_depth == 0


async def test_a_full_endpoint_is_skipped_and_a_full_model_waits_for_a_slot() -> None:
    fleet = Fleet(models(("judge", [{"url": A, "max_concurrency": 2, "weight": 10},
                                    {"url": B, "max_concurrency": 1}])))
    hold = asyncio.Event()
    fleet[A].hold = fleet[B].hold = hold
    tasks = [asyncio.create_task(fleet.router.generate(ask())) for _ in range(5)]
    await wait_until(lambda: fleet[A].waiting + fleet[B].waiting == 3, what="3 in flight")
    pool = fleet.router.pools["judge"]
    assert (fleet[A].waiting, fleet[B].waiting, pool.waiting) == (2, 1, 2)
    assert fleet.router.queue_depth == 5  # 3 in flight + 2 waiting for a slot
    hold.set()
    await asyncio.gather(*tasks)
    assert fleet[A].count + fleet[B].count == 5 and pool.waiting == 0
    assert max(e.in_flight for e in pool.endpoints) == 0


async def test_generate_many_routes_each_request() -> None:
    fleet = Fleet(models(("judge", [A]), ("other", [B])))
    results = await fleet.router.generate_many([ask("judge"), ask("other"), ask(None)])
    assert [r.text for r in results] == [A, B, A]
