"""`POST /v1/chat/completions`: messages to an assistant reply, streamed or not."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from evalserve.engines.base import GenerationRequest, StreamDelta
from evalserve.server.costs import check_max_tokens
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
from evalserve.server.serving.logprobs import chat_logprobs

if TYPE_CHECKING:
    from fastapi.responses import Response

    from evalserve.server.auth import Caller
    from evalserve.server.protocol.openai import ChatCompletionRequest
    from evalserve.server.state import AppState

__all__ = ["serve_chat"]

ENDPOINT = "/v1/chat/completions"


def _top_k(body: ChatCompletionRequest) -> int | None:
    return (body.top_logprobs or 0) if body.logprobs else None


async def serve_chat(state: AppState, body: ChatCompletionRequest, caller: Caller) -> Response:
    """Answer one chat completions request (limits, cache, engine); `n` counts as `n`
    prompts."""
    call = await begin(state, ENDPOINT, body.model, caller, sequences=body.n)
    hit = await call.cached(body)
    if hit is not None:
        return hit
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    check_max_tokens(state.settings, body.max_tokens, "max_tokens")
    check_max_tokens(state.settings, body.max_completion_tokens, "max_completion_tokens")
    sampling = sampling_of(body, body.max_completion_tokens or body.max_tokens,
                           state.settings.max_new_tokens)
    k = _top_k(body)
    check_support(call.engine, k, sampling["constraint"])
    if body.stream:
        return await _stream(call, body, messages, sampling, k)
    request = GenerationRequest(messages=messages, model=call.model, n=body.n, logprobs=k,
                                **sampling)
    result = await call.run(call.engine.generate(request))
    choices = [{
        "index": out.index,
        "message": {"role": "assistant", "content": out.text},
        "logprobs": chat_logprobs(out.logprobs or [], k) if k is not None else None,
        "finish_reason": out.finish_reason,
    } for out in result.outputs]
    await call.observe(result.prompt_tokens, result.completion_tokens)
    return await call.respond({
        "id": new_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()),
        "model": body.model, "choices": choices,
        "usage": usage_of(result.prompt_tokens, result.completion_tokens),
    })


async def _stream(call: Call, body: ChatCompletionRequest, messages: list[dict[str, Any]],
                  sampling: dict[str, Any], k: int | None) -> Response:
    requests = [GenerationRequest(messages=messages, model=call.model, logprobs=k, **{
        **sampling, "seed": None if body.seed is None else body.seed + i}) for i in range(body.n)]
    stream = merge_streams(call.engine, requests)
    first = await first_delta(stream, call)
    base = {"id": new_id("chatcmpl"), "object": "chat.completion.chunk",
            "created": int(time.time()), "model": body.model}
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def chunks(first: tuple[int, StreamDelta],
                     rest: AsyncIterator[tuple[int, StreamDelta]]) -> AsyncIterator[dict]:
        prompt_tokens = 0
        completion_tokens = 0
        for i in range(body.n):
            yield {**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                        "logprobs": None, "finish_reason": None}]}

        def chunk(i: int, delta: StreamDelta) -> dict:
            nonlocal prompt_tokens, completion_tokens
            if delta.finish_reason is not None:
                prompt_tokens = delta.prompt_tokens or 0
                completion_tokens += delta.completion_tokens or 0
            logprobs = chat_logprobs(delta.logprobs or [], k) if k is not None else None
            return {**base, "choices": [{
                "index": i, "delta": {"content": delta.text} if delta.text else {},
                "logprobs": logprobs, "finish_reason": delta.finish_reason}]}

        yield chunk(*first)
        async for i, delta in rest:
            yield chunk(i, delta)
        await call.observe(prompt_tokens, completion_tokens)
        if include_usage:
            yield {**base, "choices": [], "usage": usage_of(prompt_tokens, completion_tokens)}

    return sse_response(first, stream, chunks, call)
