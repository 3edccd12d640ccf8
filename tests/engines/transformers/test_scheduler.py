"""The continuous-batching scheduler on a tiny random model: every sequence decodes exactly as
plain greedy decoding would, whatever batch it shares, and the batch is formed as documented
(gathering, grouping by length within the prefill budget, joining and leaving, capacity,
aborts, errors, shared prefixes). Forward calls are recorded to see the batches. The last two
tests check the same on the bundled model, through the engine."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.engines.transformers.scheduler import DecodeScheduler
from evalserve.errors import EngineError
from tests.engines.conftest import start_engine
from tests.engines.transformers.tiny import (
    Recorder,
    decode,
    greedy_reference,
    prompt,
    scheduler,
    sequence,
)
from tests.waiting import wait_for


def steps(rows: int, count: int) -> list[tuple[str, int, int]]:
    return [("step", rows, 1)] * count


def test_a_lone_sequence_decodes_as_plain_greedy_decoding(model: Any) -> None:
    rec = Recorder(model)
    seq, out = sequence(prompt(5, 1), max_tokens=6)
    with scheduler(rec) as sched:
        sched.submit(seq)
        final = out.wait()
    assert seq.output_ids == greedy_reference(model, prompt(5, 1), 6)
    assert (final.finish_reason, final.completion_tokens, final.prompt_tokens) == ("length", 6, 5)
    assert out.text == decode(seq.output_ids)
    assert len(out.deltas) == 6  # one delta per token: text is streamed as it is decoded
    assert rec.calls == [("prefill", 1, 5), *steps(1, 5)]


def test_sequences_arriving_within_the_gather_window_share_one_prefill(model: Any) -> None:
    """Left-padded rows of different lengths decode as they would alone."""
    rec = Recorder(model)
    (a, out_a), (b, out_b) = sequence(prompt(3, 2), 5), sequence(prompt(9, 3), 5)
    with scheduler(rec, capacity=4, gather_seconds=0.5) as sched:
        sched.submit(a)
        time.sleep(0.05)  # the second arrives after the first, within the window
        sched.submit(b)
        out_a.wait()
        out_b.wait()
    assert rec.calls[0] == ("prefill", 2, 9)
    assert rec.calls[1:] == steps(2, 4)
    assert a.output_ids == greedy_reference(model, prompt(3, 2), 5)
    assert b.output_ids == greedy_reference(model, prompt(9, 3), 5)
    assert a.output_ids != b.output_ids


def test_prefill_groups_by_length_within_the_token_budget(model: Any) -> None:
    """Sorted by length, a group grows while rows x its longest prompt fits the budget."""
    lengths = [3, 20, 4, 21]
    rec = Recorder(model)
    pairs = [sequence(prompt(n, n), 3) for n in lengths]
    with scheduler(rec, capacity=4, prefill_token_budget=40, gather_seconds=5) as sched:
        for seq, _ in pairs:
            sched.submit(seq)
        for _, out in pairs:
            out.wait()
    # [3, 4]: 2 x 4 <= 40; + 20 would be 3 x 20 > 40; [20] + 21 would be 2 x 21 > 40
    assert rec.calls == [("prefill", 2, 4), ("prefill", 1, 20), ("prefill", 1, 21), *steps(4, 2)]
    for n, (seq, _) in zip(lengths, pairs):
        assert seq.output_ids == greedy_reference(model, prompt(n, n), 3)


def test_a_sequence_joins_the_running_batch_and_leaves_when_done(model: Any) -> None:
    late, late_out = sequence(prompt(11, 5), 4)
    holder: dict[str, DecodeScheduler] = {}

    def join_during_second_step(n: int) -> None:
        if n == 3:
            holder["sched"].submit(late)

    rec = Recorder(model, before=join_during_second_step)
    first, first_out = sequence(prompt(4, 4), 10)
    with scheduler(rec) as sched:
        holder["sched"] = sched
        sched.submit(first)
        first_out.wait()
        late_out.wait()
    # the late one is prefilled alone, decodes 3 steps with the first, then leaves at once
    assert rec.calls == [("prefill", 1, 4), *steps(1, 2), ("prefill", 1, 11), *steps(2, 3),
                         *steps(1, 4)]
    assert first.output_ids == greedy_reference(model, prompt(4, 4), 10)
    assert late.output_ids == greedy_reference(model, prompt(11, 5), 4)


def test_finished_sequences_leave_at_once_and_the_rest_continue(model: Any) -> None:
    """The longest prompt leaves first, so its padding columns are trimmed from the batch."""
    rec = Recorder(model)
    specs = [(14, 2), (6, 5), (3, 8)]  # (prompt length, max_tokens)
    pairs = [sequence(prompt(n, 10 + n), m) for n, m in specs]
    with scheduler(rec, capacity=3) as sched:
        for seq, _ in pairs:
            sched.submit(seq)
        finals = [out.wait() for _, out in pairs]
        # the last delta is emitted just before the batch is updated
        wait_for(lambda: sched.running == 0, 10, "an empty batch", 0.001)
    assert [c[1] for c in rec.calls if c[0] == "step"] == [3, 2, 2, 2, 1, 1, 1]
    assert [f.completion_tokens for f in finals] == [2, 5, 8]
    for (n, m), (seq, _) in zip(specs, pairs):
        assert seq.output_ids == greedy_reference(model, prompt(n, 10 + n), m)


def test_an_eos_token_stops_a_sequence_early(model: Any) -> None:
    expected = greedy_reference(model, prompt(6, 7), 6)
    eos = expected[2]
    assert eos not in expected[:2]
    seq, out = sequence(prompt(6, 7), 6)
    with scheduler(model, eos_ids=frozenset({eos})) as sched:
        sched.submit(seq)
        final = out.wait()
    assert seq.output_ids == expected[:3] and final.finish_reason == "stop"
    assert out.text == decode(expected[:2])  # the end-of-sequence token is not text


def test_capacity_bounds_the_batch_and_the_rest_wait_in_the_queue(model: Any) -> None:
    seen: list[tuple[int, int]] = []
    holder: dict[str, DecodeScheduler] = {}
    submitted = threading.Event()

    def observe(n: int) -> None:
        if n == 1:
            assert submitted.wait(10)
        seen.append((holder["sched"].running, holder["sched"].queue_depth))

    rec = Recorder(model, before=observe)
    pairs = [sequence(prompt(5, 20 + i), 3) for i in range(3)]
    with scheduler(rec, capacity=2) as sched:
        holder["sched"] = sched
        for seq, _ in pairs:
            sched.submit(seq)
        submitted.set()
        for _, out in pairs:
            out.wait()
        wait_for(lambda: sched.running == 0, 10, "an empty batch", 0.001)
        assert sched.queue_depth == 0
    assert rec.calls == [("prefill", 2, 5), *steps(2, 2), ("prefill", 1, 5), *steps(1, 2)]
    # before each call: (running, waiting); the third waits until the first two are done
    assert seen == [(0, 1), (2, 1), (2, 1), (0, 0), (1, 0), (1, 0)]
    for i, (seq, _) in enumerate(pairs):
        assert seq.output_ids == greedy_reference(model, prompt(5, 20 + i), 3)


def test_abort_finishes_a_running_sequence_at_the_next_step(model: Any) -> None:
    seq, out = sequence(prompt(5, 30), 50)
    other, other_out = sequence(prompt(5, 31), 6)

    def abort_at_third_call(n: int) -> None:
        if n == 3:
            seq.aborted = True

    rec = Recorder(model, before=abort_at_third_call)
    with scheduler(rec, capacity=2) as sched:
        sched.submit(seq)
        sched.submit(other)
        final = out.wait()
        other_out.wait()
    assert final.finish_reason == "abort"
    assert final.completion_tokens == len(seq.output_ids) == 2  # prefill + one step
    assert [c[1] for c in rec.calls] == [2, 2, 2, 1, 1, 1]  # it left; the other went on
    assert other.output_ids == greedy_reference(model, prompt(5, 31), 6)


def test_a_sequence_aborted_while_waiting_never_reaches_the_model(model: Any) -> None:
    rec = Recorder(model)
    seq, out = sequence(prompt(5, 40), 5)
    seq.aborted = True
    with scheduler(rec, gather_seconds=0.01) as sched:
        sched.submit(seq)
        final = out.wait()
    assert (final.finish_reason, final.completion_tokens, final.text) == ("abort", 0, "")
    assert rec.calls == []


def test_a_failing_step_fails_every_sequence_and_the_scheduler_goes_on(model: Any) -> None:
    """A failed model forward loses the batch's KV cache: its sequences fail with an
    EngineError (a 5xx for their callers, the cause kept), later requests are served."""

    def fail_second_call(n: int) -> None:
        if n == 2:
            raise RuntimeError("out of memory")

    rec = Recorder(model, before=fail_second_call)
    pairs = [sequence(prompt(4, 50 + i), 5) for i in range(2)]
    with scheduler(rec, capacity=2) as sched:
        for seq, _ in pairs:
            sched.submit(seq)
        for seq, out in pairs:
            assert out.done.wait(30)
            assert isinstance(out.error, EngineError) and seq.finish_reason == "abort"
            assert "RuntimeError" in out.error.message
            assert isinstance(out.error.__cause__, RuntimeError)
        wait_for(lambda: sched.running == 0, 10, "an empty batch", 0.001)
        after, after_out = sequence(prompt(4, 60), 3)
        sched.submit(after)
        after_out.wait()
    assert after.output_ids == greedy_reference(model, prompt(4, 60), 3)


@pytest.mark.parametrize("prefix_caching", [True, False])
def test_a_shared_prompt_prefix_is_computed_once_and_reused(model: Any,
                                                            prefix_caching: bool) -> None:
    shared = prompt(40, 70)
    prompts = [shared + prompt(3 + i, 71 + i) for i in range(3)]
    rec = Recorder(model)
    pairs = [sequence(p, 4) for p in prompts]
    later, later_out = sequence(shared + prompt(6, 80), 4)
    with scheduler(rec, capacity=3, prefix_caching=prefix_caching) as sched:
        for seq, _ in pairs:
            sched.submit(seq)
        for _, out in pairs:
            out.wait()
        sched.submit(later)
        later_out.wait()
        cache = sched.prefix_cache
    prefills = [c for c in rec.calls if c[0] != "step"]
    if prefix_caching:
        assert cache is not None and len(cache) == 1 and cache.hits == 1
        # the prefix once, then each row's own tokens; the later one starts after the prefix
        assert prefills == [("prefix", 1, 40), ("prefill", 3, 5), ("prefill", 1, 6)]
    else:
        assert cache is None
        assert prefills == [("prefill", 3, 45), ("prefill", 1, 46)]
    for p, (seq, _) in zip(prompts, pairs):
        assert seq.output_ids == greedy_reference(model, p, 4)
    assert later.output_ids == greedy_reference(model, shared + prompt(6, 80), 4)


# --- the bundled model, through the engine ---


async def test_continuous_batching_matches_one_at_a_time(tmp_path) -> None:
    """Requests that join a running batch mid-flight (different prompt lengths, so caches of
    different widths are merged) decode exactly as when run alone (float32, greedy)."""
    eng = await start_engine(tmp_path, dtype="float32", max_num_seqs=8)
    try:
        prompts = ["Hi.", "Explain in one sentence why the sky is blue to a child.",
                   "List two colours.", "What is 12 times 12? Answer briefly, please, thanks.",
                   "Name a planet."]

        def req(p: str) -> GenerationRequest:
            return GenerationRequest(messages=[{"role": "user", "content": p}], max_tokens=20,
                                     temperature=0)

        alone = [(await eng.generate(req(p))).text for p in prompts]
        tasks = []
        for p in prompts:
            tasks.append(asyncio.create_task(eng.generate(req(p))))
            # the next request joins only once this one is decoding in the running batch
            deadline = asyncio.get_running_loop().time() + 30
            while (eng.running < len([t for t in tasks if not t.done()])
                   and asyncio.get_running_loop().time() < deadline):
                await asyncio.sleep(0.005)
        together = [r.text for r in await asyncio.gather(*tasks)]
        assert together == alone
    finally:
        await eng.close()


async def test_shared_prefix_is_computed_once_and_changes_nothing(tmp_path) -> None:
    """Judge-like prompts sharing a long system prompt decode exactly as without the cache."""
    system = ("You are a strict teacher. Read the student's answer, think about what a good "
              "answer contains, and reply with one short sentence of feedback. " * 3)
    answers = ["Plants eat sunlight.", "Water boils at 100 degrees.", "The moon is a star.",
               "Two plus two is four, obviously, as everyone knows."]

    def req(answer: str) -> GenerationRequest:
        return GenerationRequest(messages=[{"role": "system", "content": system},
                                           {"role": "user", "content": answer}],
                                 max_tokens=16, temperature=0)

    cached = await start_engine(tmp_path / "a", dtype="float32", max_num_seqs=8)
    plain = await start_engine(tmp_path / "b", dtype="float32", max_num_seqs=8,
                               enable_prefix_caching=False)
    try:
        with_cache = [r.text for r in await cached.generate_many([req(a) for a in answers])]
        # a later request reuses the stored prefix
        late = await cached.generate(req("Fish can fly."))
        assert cached._scheduler.prefix_cache.hits >= 1
        assert len(cached._scheduler.prefix_cache) == 1
        without = [r.text for r in await plain.generate_many([req(a) for a in answers])]
        assert with_cache == without
        assert late.text == (await plain.generate(req("Fish can fly."))).text
    finally:
        await cached.close()
        await plain.close()


def test_direct_requests_go_first_and_background_ones_leave_the_reserve_free(
        model: Any) -> None:
    """Regression (issue 11's known gap): with a job's items filling the batch, a direct `/v1`
    request waited 22-25 s for a free slot. Background sequences now stop at
    `capacity - reserve` running, and a direct one arriving later is admitted at the next
    step, ahead of the background ones still waiting."""
    seen: list[tuple[int, int]] = []
    holder: dict[str, DecodeScheduler] = {}
    submitted = threading.Event()
    direct_sent = threading.Event()

    def observe(n: int) -> None:
        if n == 1:
            assert submitted.wait(10)
        if n == 2:  # the background batch is decoding: a direct request arrives now
            holder["sched"].submit(direct)
            direct_sent.set()
        seen.append((holder["sched"].running, holder["sched"].queue_depth))

    background = [sequence(prompt(5, 60 + i), 4, background=True) for i in range(4)]
    direct, direct_out = sequence(prompt(5, 70), 2)
    rec = Recorder(model, before=observe)
    with scheduler(rec, capacity=3, reserve=1, gather_seconds=0.01) as sched:
        holder["sched"] = sched
        for seq, _ in background:
            sched.submit(seq)
        submitted.set()
        direct_out.wait()
        for _, out in background:
            out.wait()
    assert direct_sent.is_set()
    # two background rows (3 slots, 1 reserved); the direct one, sent during their first step,
    # joins them at the next, although two background sequences were waiting before it
    assert rec.calls[:4] == [("prefill", 2, 5), ("step", 2, 1), ("prefill", 1, 5),
                             ("step", 3, 1)]
    assert direct.output_ids == greedy_reference(model, prompt(5, 70), 2)
    for i, (seq, _) in enumerate(background):
        assert seq.output_ids == greedy_reference(model, prompt(5, 60 + i), 4)
    # the two later background rows never decoded beside two running background ones
    assert max(r for kind, r, _ in rec.calls if kind == "step") == 3


def test_without_a_reserve_background_sequences_fill_the_batch(model: Any) -> None:
    rec = Recorder(model)
    pairs = [sequence(prompt(5, 80 + i), 3, background=True) for i in range(3)]
    with scheduler(rec, capacity=3, gather_seconds=0.5) as sched:
        for seq, _ in pairs:
            sched.submit(seq)
        for _, out in pairs:
            out.wait()
    assert rec.calls == [("prefill", 3, 5), *steps(3, 2)]
