"""Scripted endpoints for the router's tests: one `FakeEndpoint` per URL, each an
httpx.MockTransport upstream whose behaviour a test switches (up, down, 5xx, 4xx, held), and a
clock the test moves by hand."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from evalserve.engines.openai import OpenAIEngine
from evalserve.engines.router import RouterEngine, UpstreamsConfig
from evalserve.engines.router.config import EndpointConfig


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def chat_reply(text: str, model: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "model": model, "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def sse(*chunks: dict | str) -> bytes:
    return "".join(f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n"
                   for c in chunks).encode()


class FakeEndpoint:
    """One upstream. `mode`: "ok", "down" (connection refused), "5xx", "4xx", "429", "timeout",
    "broken-stream" (two tokens, then the connection drops). `hold` makes answers wait."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"
        self.models_down = False
        self.models_hang = False
        """`/models` never answers (a health check times out)."""
        self.hold: asyncio.Event | None = None
        self.bodies: list[dict[str, Any]] = []
        self.waiting = 0
        self.probes = 0
        self.reply: str | None = None
        """The chat answer's text; None: the endpoint's name."""

    @property
    def count(self) -> int:
        """Generation requests received (health checks not counted)."""
        return len(self.bodies)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            self.probes += 1
            if self.models_hang:
                await asyncio.Event().wait()
            if self.models_down or self.mode == "down":
                raise httpx.ConnectError("refused")
            return httpx.Response(200, json={"object": "list", "data": [{"id": self.name}]})
        if self.mode == "down":
            raise httpx.ConnectError("refused")
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.hold is not None:
            self.waiting += 1
            try:
                await self.hold.wait()
            finally:
                self.waiting -= 1
        return self._answer(body, chat=request.url.path.endswith("/chat/completions"))

    def _answer(self, body: dict[str, Any], chat: bool) -> httpx.Response:
        if self.mode == "5xx":
            return httpx.Response(503, json={"error": {"message": f"{self.name} overloaded"}})
        if self.mode == "4xx":
            return httpx.Response(400, json={"error": {"message": "prompt too long"}})
        if self.mode == "429":
            return httpx.Response(429, json={"error": {"message": "slow down"}},
                                  headers={"retry-after": "3"})
        if self.mode == "timeout":
            raise httpx.ReadTimeout("slow")
        if not chat:
            return httpx.Response(200, json={"object": "text_completion", "choices": [
                {"index": 0, "text": self.name, "finish_reason": "length"}]})
        if body.get("stream"):
            delta = {"choices": [{"index": 0, "delta": {"content": self.name}}]}
            if self.mode == "broken-stream":
                return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                      stream=_Broken(sse(delta, delta)))
            end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  content=sse(delta, end, "[DONE]"))
        return httpx.Response(200, json=chat_reply(self.reply or self.name, body["model"]))


class _Broken(httpx.AsyncByteStream):
    """A body that sends `data`, then fails as a dropped connection does."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self):  # noqa: ANN204
        yield self.data
        raise httpx.ReadError("connection reset")


class Fleet:
    """A `RouterEngine` over fake endpoints; `fleet[url]` is the endpoint at that URL."""

    def __init__(self, config: dict[str, Any], clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.fakes: dict[str, FakeEndpoint] = {}

        def factory(endpoint: EndpointConfig, model: str, timeout: float) -> OpenAIEngine:
            fake = self.fakes.setdefault(endpoint.url, FakeEndpoint(endpoint.url))
            return OpenAIEngine(endpoint.url, api_key=endpoint.api_key,
                                model=endpoint.upstream_model or model, timeout=timeout,
                                retries=0, capacity=endpoint.max_concurrency,
                                transport=httpx.MockTransport(fake), routed=True)

        self.router = RouterEngine(UpstreamsConfig.model_validate(config), clock=self.clock,
                                   engine_factory=factory)

    def __getitem__(self, url: str) -> FakeEndpoint:
        return self.fakes[url]

    def endpoint(self, url: str):  # noqa: ANN201
        """The router's `Endpoint` at `url`."""
        return next(e for e in self.router.endpoints if e.url == url)


def models(*specs: tuple[str, list[str | dict[str, Any]]] | tuple[str, list, list[str]],
           **top: Any) -> dict[str, Any]:
    """A config: `("name", [url or endpoint dict, ...], [fallbacks])` per model."""
    out = []
    for spec in specs:
        name, endpoints, *rest = spec
        out.append({"name": name, "endpoints": [
            {"url": e} if isinstance(e, str) else e for e in endpoints],
            "fallbacks": rest[0] if rest else []})
    return {"models": out, **top}
