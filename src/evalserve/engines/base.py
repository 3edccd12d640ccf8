"""The engine seam: requests in, text + token logprobs out.

Everything above the engine (judge, jobs, HTTP) sees only these types. No OpenAI, vLLM or
transformers type crosses this module.
"""

from __future__ import annotations

import asyncio
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from evalserve.errors import InvalidInputError

__all__ = [
    "OutputConstraint",
    "GenerationRequest",
    "TokenLogprob",
    "CompletionOutput",
    "GenerationResult",
    "StreamDelta",
    "EngineHealth",
    "ModelInfo",
    "Engine",
]

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class OutputConstraint:
    """Restricts what the engine may emit. Exactly one of the fields is set."""

    json_schema: dict[str, Any] | None = None
    regex: str | None = None
    choice: tuple[str, ...] | None = None
    json_object: bool = False

    def __post_init__(self) -> None:
        kinds = [self.json_schema is not None, self.regex is not None,
                 self.choice is not None, self.json_object]
        if sum(kinds) != 1:
            raise InvalidInputError(
                "an output constraint takes exactly one of json_schema, regex, choice, json_object"
            )
        if self.choice is not None and not self.choice:
            raise InvalidInputError("a choice constraint needs at least one option")


@dataclass
class GenerationRequest:
    """One generation: `prompt` (raw text) or `messages` (chat, the model's template applies)."""

    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    n: int = 1
    logprobs: int | None = None
    """None: no logprobs. k >= 0: the sampled token's logprob plus the top k alternatives."""
    constraint: OutputConstraint | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise InvalidInputError("a generation request takes either a prompt or messages")
        if self.max_tokens < 1:
            raise InvalidInputError("max_tokens must be at least 1")
        if self.n < 1:
            raise InvalidInputError("n must be at least 1")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidInputError("top_p must be in (0, 1]")
        if self.temperature < 0:
            raise InvalidInputError("temperature must be >= 0")
        if self.logprobs is not None and not 0 <= self.logprobs <= 20:
            raise InvalidInputError("logprobs (top alternatives) must be between 0 and 20")


@dataclass
class TokenLogprob:
    """One generated token, its log-probability and the top alternatives at that step."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class CompletionOutput:
    """One of the `n` sequences generated for a request."""

    text: str
    finish_reason: FinishReason
    completion_tokens: int
    logprobs: list[TokenLogprob] | None = None
    index: int = 0


@dataclass
class GenerationResult:
    """All sequences of one request."""

    request_id: str
    outputs: list[CompletionOutput]
    prompt_tokens: int

    @property
    def text(self) -> str:
        return self.outputs[0].text

    @property
    def completion_tokens(self) -> int:
        return sum(o.completion_tokens for o in self.outputs)


@dataclass
class StreamDelta:
    """A piece of streamed text; the last one carries `finish_reason` and the token counts."""

    text: str
    finish_reason: FinishReason | None = None
    logprobs: list[TokenLogprob] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class EngineHealth:
    loaded: bool
    device: str
    gpu_available: bool
    detail: str = ""


@dataclass
class ModelInfo:
    id: str
    owned_by: str = "evalserve"
    created: int = 0
    loaded_at: float | None = None
    gpu_memory_gb: float | None = None
    max_model_len: int | None = None


class Engine(ABC):
    """What every engine implements. Concurrency-safe: many coroutines may call at once."""

    #: Most sequences the engine decodes together; the job runner keeps this many in flight.
    capacity: int = 1
    #: True when `logprobs` in a request are honoured.
    supports_logprobs: bool = True
    #: True when `constraint` is enforced during decoding (not just requested).
    supports_constraints: bool = True

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The id clients use for the served model."""

    @property
    def queue_depth(self) -> int:
        """Sequences waiting to be decoded (requests in flight upstream for a proxy)."""
        return 0

    @property
    def running(self) -> int | None:
        """Sequences being decoded now, or None where the engine cannot tell (a proxy)."""
        return None

    async def start(self) -> None:
        """Load weights / open connections. Called once by the server's lifespan."""

    @abstractmethod
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate for one request; concurrent calls are batched by the engine."""

    async def generate_many(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate for several requests at once, results in the same order."""
        return list(await asyncio.gather(*(self.generate(r) for r in requests)))

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        """Stream one request (n must be 1). Closing the iterator aborts the generation."""

    @abstractmethod
    async def abort(self, request_id: str) -> None:
        """Stop a running request; its result finishes with `finish_reason="abort"`."""

    @abstractmethod
    async def health(self) -> EngineHealth:
        """Whether the engine can serve now."""

    async def models(self) -> list[ModelInfo]:
        """Models served by this engine."""
        return [ModelInfo(id=self.model_id)]

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's tokenizer (an estimate where none is local)."""
        return max(1, len(text) // 4)

    async def close(self) -> None:
        """Release weights, threads and connections."""
