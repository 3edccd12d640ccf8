"""FairSlots: a free slot goes to the owner holding fewest, then to its job holding fewest."""

from __future__ import annotations

import asyncio

import pytest

from evalserve.jobs.slots import FairSlots


async def _waiter(slots: FairSlots, owner: str, job: str, got: list[str]) -> None:
    await slots.acquire(owner, job)
    got.append(job)


async def test_a_new_owner_gets_freed_slots_until_it_holds_its_share() -> None:
    slots = FairSlots(4)
    for _ in range(4):
        await slots.acquire("a", "big")
    got: list[str] = []
    tasks = [asyncio.create_task(_waiter(slots, "a", "big", got)) for _ in range(4)]
    tasks += [asyncio.create_task(_waiter(slots, "b", "small", got)) for _ in range(4)]
    await asyncio.sleep(0)
    for _ in range(4):
        slots.release("a", "big")  # all four finish at once
    await asyncio.sleep(0)
    assert sorted(got) == ["big", "big", "small", "small"]
    assert (slots.held("a"), slots.held("b"), slots.held()) == (2, 2, 4)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_an_owners_jobs_take_turns() -> None:
    slots = FairSlots(1)
    await slots.acquire("a", "j0")
    got: list[str] = []
    tasks = [asyncio.create_task(_waiter(slots, "a", j, got)) for j in ("j1", "j1", "j2")]
    await asyncio.sleep(0)
    for job in ("j0", "j1", "j2"):
        slots.release("a", job)
        await asyncio.sleep(0)
    assert got == ["j1", "j2", "j1"]
    await asyncio.gather(*tasks)


async def test_a_cancelled_waiter_holds_nothing_and_is_skipped() -> None:
    slots = FairSlots(1)
    await slots.acquire("a", "j")
    waiting = asyncio.create_task(slots.acquire("b", "k"))
    await asyncio.sleep(0)
    waiting.cancel()
    slots.release("a", "j")  # before the cancelled waiter ran: it must be skipped
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (slots.held(), slots.waiting()) == (0, 0)
    await slots.acquire("c", "m")
    assert slots.held("c") == 1
