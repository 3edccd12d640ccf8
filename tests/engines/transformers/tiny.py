"""Test helpers for the transformers engine's parts: a tiny randomly initialised Llama (no
download, milliseconds per step), a one-character-per-token tokenizer, sequences that record
what they emit, and plain greedy decoding to compare the scheduler against."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

from evalserve.engines.base import GenerationRequest, StreamDelta
from evalserve.engines.transformers.scheduler import DecodeScheduler
from evalserve.engines.transformers.sequence import Sequence

VOCAB = 96


def tiny_model() -> Any:
    """A 2-layer Llama with hidden size 32 and a 96-token vocabulary, seeded, float32."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, initializer_range=0.5)
    return LlamaForCausalLM(config).eval()


def decode(ids: list[int]) -> str:
    """Token i is the character chr(32 + i)."""
    return "".join(chr(32 + i) for i in ids)


class CharTokenizer:
    """What the scheduler needs of a tokenizer: a pad id and `decode`."""

    pad_token_id = 0

    def decode(self, ids: list[int]) -> str:
        return decode(ids)


class Collector:
    """A sequence's `emit`: keeps the deltas (or the error) and signals the last one."""

    def __init__(self) -> None:
        self.deltas: list[StreamDelta] = []
        self.error: BaseException | None = None
        self.done = threading.Event()

    def __call__(self, item: StreamDelta | BaseException) -> None:
        if isinstance(item, BaseException):
            self.error = item
            self.done.set()
            return
        self.deltas.append(item)
        if item.finish_reason is not None:
            self.done.set()

    def wait(self, timeout: float = 30.0) -> StreamDelta:
        """The final delta, once it came."""
        assert self.done.wait(timeout), "the sequence never finished"
        assert self.error is None, self.error
        return self.deltas[-1]

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas)


def sequence(prompt_ids: list[int], max_tokens: int = 4, *,
             decoder: Callable[[list[int]], str] = decode, **request: Any
             ) -> tuple[Sequence, Collector]:
    """A sequence for a prompt of token ids (greedy unless `temperature` is given)."""
    request.setdefault("temperature", 0.0)
    collector = Collector()
    seq = Sequence(request=GenerationRequest(prompt="(ids)", max_tokens=max_tokens, **request),
                   prompt_ids=list(prompt_ids), max_tokens=max_tokens, emit=collector,
                   decode=decoder)
    return seq, collector


def greedy_reference(model: Any, prompt_ids: list[int], max_tokens: int) -> list[int]:
    """Greedy decoding by full forward passes: no cache, no padding, no batching."""
    import torch

    out: list[int] = []
    with torch.inference_mode():
        for _ in range(max_tokens):
            logits = model(input_ids=torch.tensor([prompt_ids + out])).logits[0, -1]
            out.append(int(logits.argmax()))
    return out


class Recorder:
    """The model, recording each forward call as (kind, rows, width); `before(n)` runs on the
    decode thread before call n (1-based)."""

    def __init__(self, model: Any, before: Callable[[int], None] | None = None) -> None:
        self.model = model
        self.before = before
        self.calls: list[tuple[str, int, int]] = []
        self._count = 0

    @property
    def device(self) -> Any:
        return self.model.device

    def __call__(self, **kwargs: Any) -> Any:
        self._count += 1
        if self.before is not None:
            self.before(self._count)
        kind = ("prefix" if "attention_mask" not in kwargs
                else "prefill" if "logits_to_keep" in kwargs else "step")
        rows, width = kwargs["input_ids"].shape
        self.calls.append((kind, rows, width))
        return self.model(**kwargs)


@contextlib.contextmanager
def scheduler(model: Any, **options: Any) -> Iterator[DecodeScheduler]:
    options = {"capacity": 8, "eos_ids": frozenset(), "grammars": None, "prefix_caching": False,
               "gather_seconds": 0.5, **options}
    sched = DecodeScheduler(model, CharTokenizer(), **options)
    try:
        yield sched
    finally:
        sched.close()


def prompt(length: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1, VOCAB) for _ in range(length)]


class BrokenMatcher:
    """A grammar matcher whose `fill_next_token_bitmask` raises from its `fail_at`-th call."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.calls = 0

    def is_terminated(self) -> bool:
        return False

    def accept_token(self, token: int) -> bool:
        return True

    def fill_next_token_bitmask(self, bitmask: Any, row: int) -> None:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise RuntimeError("matcher state corrupt")
