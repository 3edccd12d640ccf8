"""What completions and chat share: model check, rate and token limits, cache, sampling and
constraints, JSON/SSE responses and the merge of several engine streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response

from evalserve.engines.base import GenerationRequest, OutputConstraint, StreamDelta
from evalserve.errors import (
    EngineError,
    EvalserveError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    error_body,
)
from evalserve.server.cache import cache_key, is_cacheable
from evalserve.server.costs import charge_prompts, check_count

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.server.auth import Caller
    from evalserve.server.protocol.openai import SamplingFields
    from evalserve.server.state import AppState
    from evalserve.server.telemetry import Telemetry

__all__ = ["Call", "begin", "constraint_of", "sampling_of", "usage_of", "json_response",
           "sse_response", "merge_streams", "new_id", "dumps"]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class Call:
    """One OpenAI request on its way through the gateway: served engine, caller, telemetry,
    cache key."""

    def __init__(self, state: AppState, engine: Engine, endpoint: str, model: str,
                 caller: Caller) -> None:
        self.state = state
        self.engine = engine
        self.endpoint = endpoint
        self.model = model
        self.caller = caller
        self.telemetry: Telemetry | None = state.components.telemetry
        self.cache = state.components.response_cache
        self.key: str | None = None
        self.started = time.perf_counter()

    async def cached(self, body: SamplingFields) -> Response | None:
        """The cached response for `body`, or None (and remember the key to store later)."""
        if self.cache is None or not is_cacheable(body.stream, body.temperature, body.seed):
            return None
        # per key id unless CACHE_SHARED: a hit must not tell one caller what another sent
        owner = None if self.state.settings.cache_shared else self.caller.key_id
        self.key = cache_key(self.endpoint, self.engine.model_id, body.model_dump(mode="json"),
                             owner)
        hit = await self.cache.get(self.key)
        if self.telemetry is not None:
            (self.telemetry.cache_hits if hit else self.telemetry.cache_misses).labels(
                self.endpoint).inc()
        if hit is None:
            return None
        return Response(hit, media_type="application/json", headers={"X-Cache": "hit"})

    async def respond(self, payload: dict[str, Any]) -> Response:
        """Serialize, store in the cache when cacheable, and answer with `X-Cache: miss`."""
        body = dumps(payload)
        if self.key is not None and self.cache is not None:
            await self.cache.set(self.key, body)
        return Response(body, media_type="application/json", headers={"X-Cache": "miss"})

    async def observe(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Record a finished generation: telemetry, and the tokens spent (TOKENS_PER_MINUTE)."""
        if self.telemetry is not None:
            self.telemetry.observe_generation(self.model, self.endpoint,
                                              time.perf_counter() - self.started,
                                              prompt_tokens, completion_tokens)
        limiter = self.state.components.rate_limiter
        if limiter is not None:
            await limiter.spend_tokens(self.caller.identity, self.model,
                                       prompt_tokens + completion_tokens)

    def failed(self, exc: BaseException) -> None:
        if self.telemetry is not None:
            kind = exc.code if isinstance(exc, EvalserveError) else type(exc).__name__
            self.telemetry.generation_errors.labels(self.model, self.endpoint, kind).inc()

    async def run(self, work: Awaitable[Any]) -> Any:
        """Await the engine work, counting failures."""
        try:
            return await work
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.failed(exc)
            raise


async def begin(state: AppState, endpoint: str, model: str, caller: Caller,
                sequences: int = 1) -> Call:
    """Check the model is served, the request asks for at most `MAX_SEQUENCES_PER_REQUEST`
    `sequences` (prompts × n), and the caller is within its token budget and rate limit
    (charged `sequences` prompts)."""
    engine = state.ready_engine()
    served = [m.id for m in await engine.models()]
    if model not in served:
        raise NotFoundError(
            f"model {model!r} is not served here; use one of: {', '.join(served)} "
            "(GET /v1/models)", code="model_not_found")
    check_count(sequences, state.settings.max_sequences_per_request, "sequences (prompts × n)",
                "MAX_SEQUENCES_PER_REQUEST")
    limiter = state.components.rate_limiter
    if limiter is not None:
        try:
            await limiter.check_tokens(caller.identity, model)
        except RateLimitError:
            if state.components.telemetry is not None:
                state.components.telemetry.rate_limited.labels(model).inc()
            raise
    await charge_prompts(state, caller, model, sequences)
    return Call(state, engine, endpoint, model, caller)


def constraint_of(body: SamplingFields) -> OutputConstraint | None:
    """`response_format`, vLLM `structured_outputs` or legacy `guided_*` as one constraint."""
    found: list[OutputConstraint] = []
    fmt = body.response_format
    if fmt is not None and fmt.type == "json_object":
        found.append(OutputConstraint(json_object=True))
    elif fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None or not fmt.json_schema.schema_:
            raise InvalidInputError(
                "response_format.json_schema.schema is required for type json_schema")
        found.append(OutputConstraint(json_schema=fmt.json_schema.schema_))
    so = body.structured_outputs
    if so is not None:
        if so.grammar is not None:
            raise InvalidInputError("structured_outputs.grammar is not supported; use json, "
                                    "regex or choice")
        found += _vllm_constraints(so.json_, so.regex, so.choice, "structured_outputs.json")
        if so.json_object:
            found.append(OutputConstraint(json_object=True))
    found += _vllm_constraints(body.guided_json, body.guided_regex, body.guided_choice,
                               "guided_json")
    if len(found) > 1:
        raise InvalidInputError("send one output constraint: response_format or one kind of "
                                "structured_outputs (json, regex, choice), not several")
    return found[0] if found else None


def _vllm_constraints(schema: dict[str, Any] | str | None, regex: str | None,
                      choice: list[str] | None, schema_field: str) -> list[OutputConstraint]:
    """The json / regex / choice trio that `structured_outputs` and the legacy `guided_*`
    fields both spell; `schema_field` names the schema field in errors."""
    found: list[OutputConstraint] = []
    if schema is not None:
        found.append(OutputConstraint(json_schema=_schema(schema, schema_field)))
    if regex is not None:
        found.append(OutputConstraint(regex=regex))
    if choice is not None:
        found.append(OutputConstraint(choice=tuple(choice)))
    return found


def _schema(value: dict[str, Any] | str, field: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{field} must be a JSON schema object: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidInputError(f"{field} must be a JSON schema object")
    return parsed


def sampling_of(body: SamplingFields, max_tokens: int | None,
                default_max_tokens: int) -> dict[str, Any]:
    """Keyword arguments of `GenerationRequest` shared by both endpoints."""
    return {
        "max_tokens": max_tokens or default_max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "stop": body.stop_list(),
        "seed": body.seed,
        "presence_penalty": body.presence_penalty,
        "frequency_penalty": body.frequency_penalty,
        "repetition_penalty": body.repetition_penalty,
        "constraint": constraint_of(body),
    }


def usage_of(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """The OpenAI `usage` object of a response or of the last stream chunk."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def check_support(engine: Engine, logprobs: int | None,
                  constraint: OutputConstraint | None) -> None:
    if logprobs is not None and not engine.supports_logprobs:
        raise InvalidInputError(f"model {engine.model_id} does not return logprobs")
    if constraint is not None and not engine.supports_constraints:
        raise InvalidInputError(f"model {engine.model_id} cannot enforce structured output")


async def merge_streams(
    engine: Engine, requests: list[GenerationRequest]
) -> AsyncIterator[tuple[int, StreamDelta]]:
    """Stream several requests at once as `(index, delta)`; closing it aborts all of them."""
    if len(requests) == 1:
        async with contextlib.aclosing(engine.stream(requests[0])) as it:
            async for delta in it:
                yield 0, delta
        return
    queue: asyncio.Queue[tuple[int, StreamDelta | BaseException | None]] = asyncio.Queue()

    async def pump(i: int, request: GenerationRequest) -> None:
        try:
            async with contextlib.aclosing(engine.stream(request)) as it:
                async for delta in it:
                    await queue.put((i, delta))
        except Exception as exc:
            await queue.put((i, exc))
        finally:
            await queue.put((i, None))

    tasks = [asyncio.create_task(pump(i, r)) for i, r in enumerate(requests)]
    try:
        running = len(tasks)
        while running:
            i, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield i, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def json_response(payload: dict[str, Any]) -> Response:
    return Response(dumps(payload), media_type="application/json")


def sse_response(first: Any, rest: AsyncIterator[Any],
                 chunks: Callable[[Any, AsyncIterator[Any]], AsyncIterator[dict[str, Any]]],
                 call: Call) -> Response:
    """An OpenAI stream: `data: {chunk}` lines, an error chunk if it fails, then `[DONE]`."""
    from sse_starlette import EventSourceResponse

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            async for chunk in chunks(first, rest):
                yield {"data": dumps(chunk).decode()}
        except EvalserveError as exc:
            call.failed(exc)
            yield {"data": dumps({"error": error_body(exc)}).decode()}
        finally:
            await rest.aclose()  # type: ignore[attr-defined]
        yield {"data": "[DONE]"}

    return EventSourceResponse(events(), sep="\n", ping=15,
                               headers={"Cache-Control": "no-cache"})


async def first_delta(stream: AsyncIterator[tuple[int, StreamDelta]],
                      call: Call) -> tuple[int, StreamDelta]:
    """Wait for the first delta so that a failure to start is an ordinary error response."""
    try:
        return await call.run(anext(stream))
    except StopAsyncIteration:
        raise EngineError("the engine produced no output") from None
    except BaseException:
        await stream.aclose()  # type: ignore[attr-defined]
        raise
