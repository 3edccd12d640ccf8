"""A scripted OpenAI-compatible upstream for the `openai` engine's tests (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import httpx

MODELS = {"object": "list", "data": [{"id": "org/up-7b", "object": "model", "created": 1,
                                      "owned_by": "vllm", "max_model_len": 4096}]}
Handler = Callable[[httpx.Request], httpx.Response]


def chat_reply(text: str = "hi", **extra: object) -> dict:
    """A chat completion body with one choice and usage 7 + 2."""
    choice = {"index": 0, "message": {"role": "assistant", "content": text},
              "finish_reason": "stop", **extra}
    return {"id": "x", "object": "chat.completion", "choices": [choice],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}


def held(text: str) -> tuple[Callable[[httpx.Request], Awaitable[httpx.Response]],
                             asyncio.Event]:
    """An upstream that answers `chat_reply(text)` only once the returned event is set."""
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=chat_reply(text))

    return handler, release


def sse(*chunks: dict | str) -> httpx.Response:
    """A text/event-stream response of `data:` lines (dicts are JSON-encoded)."""
    lines = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    return httpx.Response(200, headers={"content-type": "text/event-stream"},
                          content="".join(lines).encode())


class Upstream:
    """A scripted upstream: `/models` always works; other paths answer from `replies`, in
    order, the last one repeating."""

    def __init__(self, *replies: httpx.Response | Exception | Handler) -> None:
        self.replies = list(replies)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=MODELS)
        self.seen.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.seen]
