"""What one sequence throws stays with it: on the tiny random model, a sequence rigged to fail
in its grammar matcher, its sampling, its stop handling or its emit ends with an error for its
caller alone, while the other sequences of the same batch decode exactly as plain greedy
decoding would. A failed forward fails only its own prefill group."""

from __future__ import annotations

from typing import Any

import torch

from evalserve.engines.base import StreamDelta
from evalserve.engines.transformers.sequence import Sequence
from evalserve.errors import EngineError, InvalidInputError
from tests.engines.transformers.tiny import (
    VOCAB,
    BrokenMatcher,
    Collector,
    Recorder,
    decode,
    greedy_reference,
    prompt,
    scheduler,
    sequence,
)
from tests.waiting import wait_for


class PassGrammars:
    """A GrammarFactory whose mask allows every token (the matchers decide what fails)."""

    def allocate_bitmask(self, rows: int) -> Any:
        return torch.zeros((rows, 1), dtype=torch.int32)

    def apply_bitmask(self, logits: Any, bitmask: Any, indices: list[int]) -> None:
        pass


def failing_decoder(after: int) -> Any:
    calls = {"n": 0}

    def decoder(ids: list[int]) -> str:
        calls["n"] += 1
        if calls["n"] > after:
            raise IndexError("string index out of range")
        return decode(ids)

    return decoder


class FailingEmit(Collector):
    """Raises on its `fail_at`-th text delta (a caller whose queue is gone), then records."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.seen = 0

    def __call__(self, item: StreamDelta | BaseException) -> None:
        if isinstance(item, StreamDelta):
            self.seen += 1
            if self.seen == self.fail_at:
                raise RuntimeError("event loop is closed")
        super().__call__(item)


def rigged(kind: str) -> tuple[Sequence, Collector]:
    ids = prompt(5, 100 + len(kind))
    if kind == "matcher":
        seq, out = sequence(ids, 8)
        seq.matcher = BrokenMatcher(fail_at=3)
    elif kind == "sampling":  # a value that got past validation: softmax of NaN
        seq, out = sequence(ids, 8, temperature=1.0)
        seq.request.temperature = float("nan")
    elif kind == "stop handling":
        seq, out = sequence(ids, 8, decoder=failing_decoder(after=2))
    else:
        out = FailingEmit(fail_at=2)
        seq, _ = sequence(ids, 8)
        seq.emit = out
    return seq, out


def test_a_failing_sequence_ends_alone_and_the_batch_decodes_on(model: Any) -> None:
    """Defect: any exception in `_step`/`_accept` (an IndexError from `stop: ""`, torch's
    multinomial on NaN, a grammar matcher) aborted every sequence in flight
    (scheduler.py `_loop`). Now the failing sequence gets the error and leaves; the others
    of the same batch go on and equal plain greedy decoding."""
    kinds = ["matcher", "sampling", "stop handling", "emit"]
    bad = [rigged(k) for k in kinds]
    good = [sequence(prompt(4 + i, 200 + i), 10) for i in range(3)]
    rec = Recorder(model)
    with scheduler(rec, capacity=8, grammars=PassGrammars()) as sched:
        for seq, _ in good[:1] + bad + good[1:]:
            sched.submit(seq)
        for _, out in good:
            final = out.wait()
            assert (final.finish_reason, final.completion_tokens) == ("length", 10)
        for kind, (seq, out) in zip(kinds, bad):
            assert out.done.wait(10), kind
            assert isinstance(out.error, EngineError), (kind, out.error)
            assert out.error.status == 500 and out.error.code == "engine_error"
            assert "see the server log" in out.error.message
            assert seq.finish_reason == "abort"
        wait_for(lambda: sched.running == 0, 10, "an empty batch", 0.001)
    assert rec.calls[0] == ("prefill", 7, 6)  # all seven shared one batch
    for i, (seq, out) in enumerate(good):
        expected = greedy_reference(model, prompt(4 + i, 200 + i), 10)
        assert seq.output_ids == expected
        assert out.text == decode(expected)
    # each failed at its rigged step, not at the first trouble of another
    assert [len(seq.output_ids) for seq, _ in bad] == [2, 0, 3, 2]


def test_an_evalserve_error_of_a_sequence_reaches_its_caller_unchanged(model: Any) -> None:
    def refuse(ids: list[int]) -> str:
        raise InvalidInputError("stop strings cannot be matched")

    seq, out = sequence(prompt(5, 1), 4, decoder=refuse)
    other, other_out = sequence(prompt(5, 2), 4)
    with scheduler(model, capacity=2) as sched:
        sched.submit(seq)
        sched.submit(other)
        other_out.wait()
        assert out.done.wait(10)
    assert isinstance(out.error, InvalidInputError) and out.deltas == []
    assert other.output_ids == greedy_reference(model, prompt(5, 2), 4)


def test_an_emit_that_cannot_even_take_the_error_does_not_stop_the_loop(model: Any) -> None:
    def dead(item: StreamDelta | BaseException) -> None:
        raise RuntimeError("event loop is closed")

    seq, _ = sequence(prompt(5, 3), 4)
    seq.emit = dead
    with scheduler(model, capacity=2) as sched:
        sched.submit(seq)
        wait_for(lambda: seq.finish_reason is not None, 10, "the dead sequence to end", 0.001)
        after, after_out = sequence(prompt(5, 4), 4)
        sched.submit(after)
        after_out.wait()
    assert seq.finish_reason == "abort"
    assert after.output_ids == greedy_reference(model, prompt(5, 4), 4)


def test_a_failed_prefill_fails_its_group_and_the_running_batch_goes_on(model: Any) -> None:
    """A forward failure is the batch's: only the group being prefilled is lost, the
    sequences already decoding keep their cache and finish."""
    running, running_out = sequence(prompt(4, 5), 12)
    late, late_out = sequence(prompt(30, 6), 4)
    holder: dict[str, Any] = {}

    def before(n: int) -> None:
        if n == 3:
            holder["sched"].submit(late)
        if n == 4:  # the late one's prefill
            raise RuntimeError("CUDA error: an illegal memory access")

    rec = Recorder(model, before=before)
    with scheduler(rec, capacity=4, gather_seconds=0.01) as sched:
        holder["sched"] = sched
        sched.submit(running)
        final = running_out.wait()
        assert late_out.done.wait(10)
    assert isinstance(late_out.error, EngineError) and late.finish_reason == "abort"
    assert final.finish_reason == "length"
    assert running.output_ids == greedy_reference(model, prompt(4, 5), 12)
    assert VOCAB > max(running.output_ids)
