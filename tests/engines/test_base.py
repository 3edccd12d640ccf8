"""The engine seam's types: request and constraint validation, results, and the defaults an
engine inherits from `Engine`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from evalserve.engines.base import (
    CompletionOutput,
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    OutputConstraint,
    StreamDelta,
)
from evalserve.errors import InvalidInputError

CHAT = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "either a prompt or messages"),
    ({"prompt": "p", "messages": CHAT}, "either a prompt or messages"),
    ({"prompt": "p", "max_tokens": 0}, "max_tokens must be at least 1"),
    ({"prompt": "p", "n": 0}, "n must be at least 1"),
    ({"prompt": "p", "top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"prompt": "p", "top_p": 1.01}, r"top_p must be in \(0, 1\]"),
    ({"prompt": "p", "temperature": -0.1}, "temperature must be >= 0"),
    ({"prompt": "p", "logprobs": -1}, "between 0 and 20"),
    ({"prompt": "p", "logprobs": 21}, "between 0 and 20"),
])
def test_an_invalid_request_says_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        GenerationRequest(**fields)


def test_the_limits_themselves_are_valid() -> None:
    for fields in ({"prompt": "", "max_tokens": 1, "top_p": 1.0, "temperature": 0.0},
                   {"messages": CHAT, "logprobs": 0}, {"messages": [], "logprobs": 20}):
        GenerationRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fields", "message"), [
    ({"temperature": float("nan")}, r"temperature must be a finite number in \[0, .*got nan"),
    ({"temperature": float("inf")}, "temperature must be a finite number"),
    ({"top_p": float("nan")}, r"top_p must be a finite number in \(0, 1\]"),
    ({"repetition_penalty": 0.0}, r"repetition_penalty must be in \(0, 2\]"),
    ({"repetition_penalty": 2.5}, r"repetition_penalty must be in \(0, 2\]"),
    ({"repetition_penalty": float("-inf")}, "repetition_penalty must be a finite number"),
    ({"presence_penalty": 2.01}, r"presence_penalty must be in \[-2, 2\], got 2.01"),
    ({"frequency_penalty": float("nan")}, "frequency_penalty must be a finite number"),
    ({"frequency_penalty": 10**400}, "frequency_penalty must be a finite number"),
    ({"seed": 2**64}, r"seed must be in \[-9223372036854775808, 9223372036854775807\]"),
    ({"seed": -(2**63) - 1}, "seed must be in"),
    ({"seed": 2**63 - 1, "n": 2}, r"with n=2, seed \+ n - 1 too"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"n": 129}, "n must be at least 1 and at most 128, got 129"),
    ({"max_tokens": 2.5}, "max_tokens must be an integer"),
    ({"stop": [1]}, "stop must be a string or a list of strings"),
])
def test_sampling_values_out_of_range_are_refused_naming_the_field(
        fields: dict[str, Any], message: str) -> None:
    """Defect: `"seed": 2**64` crashed torch.manual_seed on the decode thread, NaN/inf floats
    and penalties outside vLLM's ranges reached the sampler; now a 422 names the field."""
    with pytest.raises(InvalidInputError, match=message):
        GenerationRequest(prompt="p", **fields)


@pytest.mark.parametrize(("given", "kept"), [
    (1e-40, 0.0), (8.4e-197, 0.0), (0.0, 0.0), (9.9e-6, 0.0), (1e-5, 0.01), (0.005, 0.01),
    (0.01, 0.01), (0.7, 0.7), (2, 2.0),
])
def test_a_tiny_temperature_is_greedy_and_a_small_one_is_raised_to_0_01(
        given: float, kept: float) -> None:
    """Defect: `"temperature": 1e-40` (and schemathesis' 8.4e-197 on POST /generate) divided
    the logits to inf/NaN and torch.multinomial raised on the decode thread, failing every
    sequence in flight. Below 1e-5 it is greedy; below 0.01 it is raised, as vLLM does."""
    request = GenerationRequest(prompt="p", temperature=given)
    assert request.temperature == kept and isinstance(request.temperature, float)


@pytest.mark.parametrize(("stop", "kept"), [
    ("", []), ([""], []), (["", "x", ""], ["x"]), ("\n", ["\n"]), (None, []),
])
def test_empty_stop_strings_are_dropped(stop: Any, kept: list[str]) -> None:
    """Defect: a lone `"stop": ""` made Sequence._emit_safe index past the text (IndexError
    on the decode thread, every sequence in flight aborted). An empty stop is no stop."""
    assert GenerationRequest(prompt="p", stop=stop).stop == kept


def test_the_extremes_of_each_range_are_accepted_and_validation_is_idempotent() -> None:
    request = GenerationRequest(
        prompt="p", seed=2**63 - 4, n=4, repetition_penalty=2.0, presence_penalty=-2.0,
        frequency_penalty=2.0, top_p=1e-9, logprobs=20, temperature=0.001, stop=["", "a"])
    GenerationRequest(prompt="p", seed=-(2**63), repetition_penalty=1e-300, n=128)
    before = (request.temperature, request.stop, request.seed)
    request.validate()
    assert (request.temperature, request.stop, request.seed) == before == (
        0.01, ["a"], 2**63 - 4)


def test_requests_get_distinct_ids_and_defaults() -> None:
    first, second = GenerationRequest(prompt="p"), GenerationRequest(prompt="p")
    assert first.request_id != second.request_id and len(first.request_id) == 32
    assert (first.max_tokens, first.temperature, first.top_p, first.n, first.logprobs,
            first.stop, first.constraint) == (256, 1.0, 1.0, 1, None, [], None)
    first.stop.append("x")
    assert second.stop == []  # no shared default list


@pytest.mark.parametrize("fields", [
    {}, {"regex": "a", "choice": ("a",)}, {"json_schema": {}, "json_object": True},
])
def test_a_constraint_takes_exactly_one_kind(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="exactly one of"):
        OutputConstraint(**fields)


def test_a_choice_constraint_needs_an_option() -> None:
    with pytest.raises(InvalidInputError, match="at least one option"):
        OutputConstraint(choice=())
    assert OutputConstraint(choice=("yes",)).choice == ("yes",)
    assert OutputConstraint(json_schema={}).json_schema == {}  # an empty schema is a schema


def test_a_result_reads_its_first_text_and_sums_its_tokens() -> None:
    result = GenerationResult("r", [CompletionOutput("a", "stop", 3),
                                    CompletionOutput("b", "length", 5, index=1)], 7)
    assert (result.text, result.completion_tokens, result.prompt_tokens) == ("a", 8, 7)


class Echo(Engine):
    """The least an engine implements; answers with its prompt after `delays[prompt]`."""

    def __init__(self, delays: dict[str, float] | None = None) -> None:
        self.delays = delays or {}
        self.active = self.peak = 0

    @property
    def model_id(self) -> str:
        return "echo"

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(self.delays.get(request.prompt or "", 0))
        self.active -= 1
        return GenerationResult(request.request_id,
                                [CompletionOutput(request.prompt or "", "stop", 1)], 1)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        yield StreamDelta(request.prompt or "", "stop")

    async def abort(self, request_id: str) -> None:
        pass

    async def health(self) -> EngineHealth:
        return EngineHealth(loaded=True, device="cpu", gpu_available=False)


async def test_engine_defaults() -> None:
    engine = Echo()
    assert (engine.queue_depth, engine.running, engine.capacity) == (0, None, 1)
    assert engine.supports_logprobs and engine.supports_constraints
    assert [m.id for m in await engine.models()] == ["echo"]
    assert engine.count_tokens("x" * 40) == 10 and engine.count_tokens("") == 1
    await engine.start()
    await engine.close()


async def test_generate_many_runs_together_and_keeps_the_order() -> None:
    engine = Echo({"slow": 0.05, "fast": 0.0})
    results = await engine.generate_many([GenerationRequest(prompt=p)
                                          for p in ("slow", "fast", "slow")])
    assert [r.text for r in results] == ["slow", "fast", "slow"]
    assert engine.peak == 3  # concurrently, not one after another


def test_an_engine_must_implement_the_seam() -> None:
    class Partial(Engine):
        @property
        def model_id(self) -> str:
            return "partial"

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]
