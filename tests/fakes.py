"""A scripted engine for unit tests of judge, job and route logic.

Never the only test of a route: every route also has an e2e test on the real model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from evalserve.engines.base import (
    CompletionOutput,
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    StreamDelta,
    TokenLogprob,
)
from evalserve.errors import EngineError

Script = Callable[[GenerationRequest], str | CompletionOutput]


def request_text(request: GenerationRequest) -> str:
    """The prompt, or the chat messages' contents joined."""
    if request.prompt is not None:
        return request.prompt
    return "\n".join(str(m.get("content", "")) for m in request.messages or [])


class ScriptedEngine(Engine):
    """Answers each request with `script(request)`; records every request it saw."""

    def __init__(self, script: Script, *, capacity: int = 8, delay: float = 0.0,
                 logprobs: list[TokenLogprob] | None = None) -> None:
        self.script = script
        self.capacity = capacity
        self.delay = delay
        self.fixed_logprobs = logprobs
        self.requests: list[GenerationRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.aborted: list[str] = []
        self.started = False
        self.closed = False

    @property
    def model_id(self) -> str:
        return "scripted"

    async def start(self) -> None:
        self.started = True

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            outputs = []
            for i in range(request.n):
                out = self.script(request)
                if isinstance(out, str):
                    out = CompletionOutput(text=out, finish_reason="stop",
                                           completion_tokens=len(out.split()) or 1,
                                           logprobs=self.fixed_logprobs, index=i)
                outputs.append(out)
            return GenerationResult(request.request_id, outputs, len(request_text(request).split()))
        finally:
            self.in_flight -= 1

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        result = await self.generate(request)
        words = result.text.split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield StreamDelta(
                text=word if i == 0 else " " + word,
                finish_reason=result.outputs[0].finish_reason if last else None,
                prompt_tokens=result.prompt_tokens if last else None,
                completion_tokens=result.outputs[0].completion_tokens if last else None,
            )

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def health(self) -> EngineHealth:
        return EngineHealth(loaded=self.started, device="cpu", gpu_available=False)

    async def close(self) -> None:
        self.closed = True


class GatedEngine(ScriptedEngine):
    """A `ScriptedEngine` whose generations wait until `gate` opens (jobs stay queued or
    running, requests stay in flight, until the test says so)."""

    def __init__(self, script: Script, **options: Any) -> None:
        super().__init__(script, **options)
        self.gate = asyncio.Event()

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        await self.gate.wait()
        return await super().generate(request)


class FailingEngine(ScriptedEngine):
    """A `ScriptedEngine` whose model fails to load with `RuntimeError(message)`."""

    def __init__(self, message: str = "weights corrupt", script: Script = lambda r: "") -> None:
        super().__init__(script)
        self.message = message

    async def start(self) -> None:
        raise RuntimeError(self.message)


class MultiModelEngine(ScriptedEngine):
    """A `ScriptedEngine` serving several models, as a router does: `models()` lists the keys
    of `scripts`, and each request is answered by the script of its `request.model` (None:
    the first model, the engine's own). A script may raise to make that model's calls fail;
    a model not served raises `EngineError`."""

    def __init__(self, scripts: dict[str, Script], **options: Any) -> None:
        super().__init__(self._route, **options)
        self.scripts = dict(scripts)

    @property
    def model_id(self) -> str:
        return next(iter(self.scripts))

    async def models(self) -> list[ModelInfo]:
        return [ModelInfo(id=name) for name in self.scripts]

    def _route(self, request: GenerationRequest) -> str | CompletionOutput:
        name = request.model or self.model_id
        if name not in self.scripts:
            raise EngineError(f"model {name!r} is not served here")
        return self.scripts[name](request)
