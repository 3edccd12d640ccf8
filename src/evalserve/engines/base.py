"""The engine seam: requests in, text + token logprobs out.

Everything above the engine (judge, jobs, HTTP) sees only these types. No OpenAI, vLLM or
transformers type crosses this module.
"""

from __future__ import annotations

import asyncio
import math
import numbers
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


#: Below this temperature sampling is greedy (vLLM's `_SAMPLING_EPS`).
GREEDY_BELOW = 1e-5
#: Temperatures in [GREEDY_BELOW, MIN_TEMPERATURE) are raised to this, as vLLM does
#: (`_MAX_TEMP`): dividing logits by less overflows float32 to inf/NaN.
MIN_TEMPERATURE = 1e-2
#: Most sequences one request may ask for (`n`).
MAX_N = 128
#: Most top alternatives per token (`logprobs`), OpenAI's and vLLM's limit.
MAX_LOGPROBS = 20
_INT64 = (-(2**63), 2**63 - 1)


def _number(name: str, value: Any, accepted: str) -> float:
    """`value` as a finite float, or an InvalidInputError naming the field and its range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name} must be a number in {accepted}, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float range
        value = math.inf
    if not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number in {accepted}, got {value}")
    return value


def _integer(name: str, value: Any, accepted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{name} must be an integer in {accepted}, got {value!r}")
    return int(value)


@dataclass
class GenerationRequest:
    """One generation: `prompt` (raw text) or `messages` (chat, the model's template applies).

    Validated and normalised at construction, the way vLLM's `SamplingParams` does, so that
    no engine ever sees a value its sampler cannot take: empty stop strings are dropped, a
    temperature below 1e-5 is greedy (0.0) and one below 0.01 is raised to 0.01, and every
    number out of range (or NaN/inf) is an `InvalidInputError` naming the field and what it
    accepts. Engines call `validate()` again on entry (it is idempotent).
    """

    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    model: str | None = None
    """The model to answer, one of the engine's `models()` (a router picks the upstream by it);
    None: the engine's own `model_id`."""
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    """Sequence i of the request is seeded with `seed + i`; both must fit in int64."""
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    n: int = 1
    logprobs: int | None = None
    """None: no logprobs. k >= 0: the sampled token's logprob plus the top k alternatives."""
    constraint: OutputConstraint | None = None
    background: bool = False
    """Work that may wait (a job's item): engines serve direct requests first and keep some of
    their capacity free of background work (`INTERACTIVE_RESERVE` on the embedded engine)."""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field and normalise `stop` and `temperature` (see the class doc)."""
        if (self.prompt is None) == (self.messages is None):
            raise InvalidInputError("a generation request takes either a prompt or messages")
        self.max_tokens = _integer("max_tokens", self.max_tokens, "[1, ...)")
        if self.max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be at least 1, got {self.max_tokens}")
        self.n = _integer("n", self.n, f"[1, {MAX_N}]")
        if not 1 <= self.n <= MAX_N:
            raise InvalidInputError(f"n must be at least 1 and at most {MAX_N}, got {self.n}")
        self._check_floats()
        self._check_seed()
        if self.logprobs is not None:
            accepted = f"[0, {MAX_LOGPROBS}]"
            self.logprobs = _integer("logprobs", self.logprobs, accepted)
            if not 0 <= self.logprobs <= MAX_LOGPROBS:
                raise InvalidInputError(f"logprobs (top alternatives) must be between 0 and "
                                        f"{MAX_LOGPROBS}, got {self.logprobs}")
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if not all(isinstance(s, str) for s in stops):
            raise InvalidInputError("stop must be a string or a list of strings")
        self.stop = [s for s in stops if s]  # "" would match everywhere: it means no stop

    def _check_floats(self) -> None:
        temperature = _number("temperature", self.temperature, "[0, ...)")
        if temperature < 0:
            raise InvalidInputError(f"temperature must be >= 0, got {temperature}")
        if temperature < GREEDY_BELOW:
            temperature = 0.0
        elif temperature < MIN_TEMPERATURE:
            temperature = MIN_TEMPERATURE
        self.temperature = temperature
        top_p = _number("top_p", self.top_p, "(0, 1]")
        if not 0.0 < top_p <= 1.0:
            raise InvalidInputError(f"top_p must be in (0, 1], got {top_p}")
        penalty = _number("repetition_penalty", self.repetition_penalty, "(0, 2]")
        if not 0.0 < penalty <= 2.0:
            raise InvalidInputError(
                f"repetition_penalty must be in (0, 2] (1 = no penalty), got {penalty}")
        for name in ("presence_penalty", "frequency_penalty"):
            value = _number(name, getattr(self, name), "[-2, 2]")
            if not -2.0 <= value <= 2.0:
                raise InvalidInputError(f"{name} must be in [-2, 2], got {value}")

    def _check_seed(self) -> None:
        if self.seed is None:
            return
        low, high = _INT64
        accepted = f"[{low}, {high - self.n + 1}] (a 64-bit integer; with n={self.n}, " \
                   f"seed + n - 1 too)"
        self.seed = _integer("seed", self.seed, accepted)
        if not low <= self.seed <= high - self.n + 1:
            raise InvalidInputError(f"seed must be in {accepted}, got {self.seed}")


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
