"""Health checks on a fake clock: endpoints out of rotation are probed back in with
exponential backoff, endpoints in rotation are checked every interval, and the background loop
reschedules when a request takes an endpoint out."""

from __future__ import annotations

import pytest

from evalserve.engines.base import GenerationRequest
from tests.engines.router.fakes import Fleet, models
from tests.waiting import wait_until

A, B = "http://a:8000/v1", "http://b:8000/v1"
TIMING = {"health_check_interval": 100, "probe_backoff": 1, "probe_backoff_max": 4}


def ask() -> GenerationRequest:
    return GenerationRequest(prompt="hi", max_tokens=2)


async def test_start_checks_every_endpoint_and_an_unreachable_one_starts_out() -> None:
    fleet = Fleet(models(("judge", [A, B]), **TIMING))
    fleet[A].models_down = True
    try:
        await fleet.router.start()
        assert (fleet[A].probes, fleet[B].probes) == (1, 1)
        assert [e.healthy for e in fleet.router.endpoints] == [False, True]
        health = await fleet.router.health()
        assert health.loaded and "judge: 1/2 endpoints in rotation" in health.detail
        assert {(await fleet.router.generate(ask())).text for _ in range(3)} == {B}
    finally:
        await fleet.router.close()


async def test_an_endpoint_out_is_probed_with_backoff_and_back_in_when_it_answers() -> None:
    fleet = Fleet(models(("judge", [A, B]), **TIMING))
    prober, a, clock = fleet.router.prober, fleet.endpoint(A), fleet.clock
    await prober.check_due()  # both in rotation; next checks in 100 s
    fleet[A].mode = "down"
    await fleet.router.generate(ask())  # A fails (least loaded first), B answers
    await fleet.router.generate(ask())
    assert not a.healthy and fleet[B].count == 2
    probes = fleet[A].probes
    wait = await prober.check_due()
    assert (wait, fleet[A].probes) == (1.0, probes)  # not probed before its backoff
    for expected in (2.0, 4.0, 4.0):  # each failed probe doubles the wait, up to the cap
        clock.advance(wait)
        wait = await prober.check_due()
        assert wait == expected
    assert fleet[A].probes - probes == 3 and not a.healthy
    fleet[A].mode = "ok"
    clock.advance(4)
    await prober.check_due()
    assert a.healthy and a.last_error is None
    await fleet.router.generate(ask())
    assert fleet[A].count == 1  # back in rotation, and least loaded


async def test_an_endpoint_answering_requests_is_not_checked() -> None:
    fleet = Fleet(models(("judge", [A]), **TIMING))
    prober, clock = fleet.router.prober, fleet.clock
    await prober.check_due()
    fleet[A].models_hang = True  # /models is slow under load, requests still answer
    clock.advance(60)
    await fleet.router.generate(ask())
    clock.advance(40)  # the regular check is due, but a request succeeded 40 s ago
    assert await prober.check_due() == 60.0
    assert fleet[A].probes == 1 and fleet.endpoint(A).healthy


@pytest.mark.parametrize("failure", ["down", "slow"])
async def test_an_endpoint_in_rotation_is_checked_each_interval_and_out_when_it_fails(
        failure: str) -> None:
    fleet = Fleet(models(("judge", [A, B]), probe_timeout=0.05, **TIMING))
    prober, clock = fleet.router.prober, fleet.clock
    assert await prober.check_due() == 100.0
    clock.advance(99)
    assert await prober.check_due() == 1.0 and fleet[A].probes == 1
    if failure == "down":
        fleet[A].models_down = True
    else:  # /models hangs: the probe times out
        fleet[A].models_hang = True
    clock.advance(1)
    await prober.check_due()
    a = fleet.endpoint(A)
    assert not a.healthy and fleet.endpoint(B).healthy
    assert ("within 0.05 s" in a.last_error) if failure == "slow" else a.last_error


async def test_the_background_loop_probes_an_endpoint_a_request_took_out() -> None:
    # the loop sleeps on real time between rounds: short backoffs keep this test quick
    fleet = Fleet(models(("judge", [A, B]), health_check_interval=100, probe_backoff=0.01,
                         probe_backoff_max=0.02))
    fleet[A].mode = "down"
    try:
        await fleet.router.start()  # A starts out of rotation
        fleet.clock.advance(1)
        await wait_until(lambda: fleet[A].probes >= 2, what="A probed again")
        fleet[A].mode = "ok"
        fleet.clock.advance(1)
        await wait_until(lambda: fleet.endpoint(A).healthy, what="A back in rotation")
        fleet[B].mode = "5xx"
        results = {(await fleet.router.generate(ask())).text for _ in range(3)}
        assert results == {A} and not fleet.endpoint(B).healthy
        fleet[B].mode = "ok"
        fleet.clock.advance(1)  # B's probe is due: taking it out woke the 100 s sleep
        await wait_until(lambda: fleet.endpoint(B).healthy, what="B probed back in")
    finally:
        await fleet.router.close()
