"""`POST /v1/completions`: prompts (one or a list) to text completions, streamed or not."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from evalserve.engines.base import GenerationRequest, StreamDelta
from evalserve.errors import InvalidInputError
from evalserve.server.costs import check_count, check_max_tokens
from evalserve.server.serving.common import (
    Call,
    begin,
    check_support,
    first_delta,
    merge_streams,
    new_id,
    sampling_of,
    sse_response,
    usage_of,
)
from evalserve.server.serving.logprobs import completion_logprobs

if TYPE_CHECKING:
    from fastapi.responses import Response

    from evalserve.server.auth import Caller
    from evalserve.server.protocol.openai import CompletionRequest
    from evalserve.server.state import AppState

__all__ = ["serve_completion"]

ENDPOINT = "/v1/completions"


def _prompts(body: CompletionRequest, limit: int) -> list[str]:
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    if not prompts:
        raise InvalidInputError("prompt must be a string or a non-empty list of strings")
    check_count(len(prompts), limit, "prompts", "MAX_PROMPTS_PER_REQUEST")
    return prompts


async def serve_completion(state: AppState, body: CompletionRequest, caller: Caller) -> Response:
    """Answer one completions request (limits, cache, engine); each prompt counts `n` times
    against the caps and the rate limit."""
    prompts = _prompts(body, state.settings.max_prompts_per_request)
    call = await begin(state, ENDPOINT, body.model, caller, sequences=len(prompts) * body.n)
    hit = await call.cached(body)
    if hit is not None:
        return hit
    check_max_tokens(state.settings, body.max_tokens, "max_tokens")
    sampling = sampling_of(body, body.max_tokens, state.settings.max_new_tokens)
    check_support(call.engine, body.logprobs, sampling["constraint"])
    if body.stream:
        return await _stream(call, body, prompts, sampling)
    requests = [GenerationRequest(prompt=p, model=call.model, n=body.n, logprobs=body.logprobs,
                                  **sampling) for p in prompts]
    results = await call.run(call.engine.generate_many(requests))
    choices = []
    for p, (prompt, result) in enumerate(zip(prompts, results)):
        for out in result.outputs:
            prefix = prompt if body.echo else ""
            logprobs = None
            if body.logprobs is not None:
                logprobs = completion_logprobs(out.logprobs or [], body.logprobs, len(prefix))
            choices.append({"index": p * body.n + out.index, "text": prefix + out.text,
                            "logprobs": logprobs, "finish_reason": out.finish_reason})
    prompt_tokens = sum(r.prompt_tokens for r in results)
    completion_tokens = sum(r.completion_tokens for r in results)
    await call.observe(prompt_tokens, completion_tokens)
    return await call.respond({
        "id": new_id("cmpl"), "object": "text_completion", "created": int(time.time()),
        "model": body.model, "choices": choices,
        "usage": usage_of(prompt_tokens, completion_tokens),
    })


async def _stream(call: Call, body: CompletionRequest, prompts: list[str],
                  sampling: dict[str, Any]) -> Response:
    requests = []
    for prompt in prompts:
        for i in range(body.n):
            seed = None if body.seed is None else body.seed + i
            requests.append(GenerationRequest(prompt=prompt, model=call.model,
                                              logprobs=body.logprobs,
                                              **{**sampling, "seed": seed}))
    stream = merge_streams(call.engine, requests)
    first = await first_delta(stream, call)
    base = {"id": new_id("cmpl"), "object": "text_completion", "created": int(time.time()),
            "model": body.model}
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def chunks(first: tuple[int, StreamDelta],
                     rest: AsyncIterator[tuple[int, StreamDelta]]) -> AsyncIterator[dict]:
        offsets = [len(prompts[i // body.n]) if body.echo else 0 for i in range(len(requests))]
        echoed = [False] * len(requests)
        prompt_tokens: dict[int, int] = {}
        completion_tokens = 0

        def chunk(i: int, delta: StreamDelta) -> dict:
            nonlocal completion_tokens
            text = delta.text
            if body.echo and not echoed[i]:
                text, echoed[i] = prompts[i // body.n] + text, True
            logprobs = None
            if body.logprobs is not None:
                logprobs = completion_logprobs(delta.logprobs or [], body.logprobs, offsets[i])
                offsets[i] += sum(len(t.token) for t in delta.logprobs or [])
            if delta.finish_reason is not None:
                prompt_tokens[i // body.n] = delta.prompt_tokens or 0
                completion_tokens += delta.completion_tokens or 0
            return {**base, "choices": [{"index": i, "text": text, "logprobs": logprobs,
                                         "finish_reason": delta.finish_reason}]}

        yield chunk(*first)
        async for i, delta in rest:
            yield chunk(i, delta)
        total_prompt = sum(prompt_tokens.values())
        await call.observe(total_prompt, completion_tokens)
        if include_usage:
            yield {**base, "choices": [], "usage": usage_of(total_prompt, completion_tokens)}

    return sse_response(first, stream, chunks, call)
