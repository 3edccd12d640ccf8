"""The `openai` engine: evalserve in front of any OpenAI-compatible server (`vllm serve`,
llama.cpp, TGI, SGLang, another evalserve).

The HTTP side (pooling, retries, error mapping) is `UpstreamClient`; the wire format is
`protocol`. This module adds what an engine needs on top: model discovery, health, in-flight
accounting and aborts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from evalserve.engines.base import (
    CompletionOutput,
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    StreamDelta,
)
from evalserve.engines.openai.client import UpstreamClient
from evalserve.engines.openai.protocol import (
    StreamState,
    generation_result,
    parsed,
    request_body,
)
from evalserve.errors import (
    ConfigurationError,
    EvalserveError,
    InvalidInputError,
    UpstreamError,
)

if TYPE_CHECKING:
    import httpx

    from evalserve.settings import Settings

__all__ = ["OpenAIEngine"]

log = logging.getLogger(__name__)

_MODELS_TTL = 10.0
_HEALTH_TIMEOUT = 3.0  # seconds; /health must answer quickly even if the upstream hangs


class OpenAIEngine(Engine):
    """Generates through an upstream OpenAI-compatible HTTP server.

    A request naming a `model` (one the upstream lists at `/models`) is sent for that model;
    one naming none, for the engine's `model_id`.
    """

    supports_logprobs = True
    supports_constraints = True

    def __init__(self, base_url: str, *, api_key: str | None = None, model: str | None = None,
                 timeout: float = 120.0, retries: int = 2, capacity: int = 32,
                 backoff: float = 0.25, transport: httpx.AsyncBaseTransport | None = None,
                 routed: bool = False) -> None:
        """`routed`: an endpoint of the router (`UPSTREAMS_FILE`); see `UpstreamClient`."""
        self.upstream = UpstreamClient(base_url, api_key=api_key, timeout=timeout,
                                       retries=retries, backoff=backoff, pool=capacity,
                                       transport=transport, routed=routed)
        self.configured_model = model
        self.capacity = capacity
        self._model: str | None = None
        self._models: list[ModelInfo] = []
        self._models_at = 0.0
        self._tasks: dict[str, asyncio.Task[GenerationResult]] = {}
        self._aborted: set[str] = set()
        self._streams: set[str] = set()
        self.in_flight = 0
        self.loaded_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEngine:
        if not settings.upstream_base_url:
            raise ConfigurationError(
                "ENGINE=openai needs VLLM_ENDPOINT, e.g. VLLM_ENDPOINT=http://vllm:8000/v1")
        return cls(settings.upstream_base_url, api_key=settings.openai_api_key,
                   model=settings.model_name, timeout=settings.upstream_timeout,
                   retries=settings.upstream_retries, capacity=settings.max_num_seqs)

    @property
    def base_url(self) -> str:
        """The upstream's API root, e.g. `http://vllm:8000/v1`."""
        return self.upstream.base_url

    @property
    def retries(self) -> int:
        """Retries after a connection error, 429 or 5xx (`UPSTREAM_RETRIES`)."""
        return self.upstream.retries

    @property
    def timeout(self) -> float:
        """Seconds an upstream call may take (`UPSTREAM_TIMEOUT`)."""
        return self.upstream.timeout

    @property
    def model_id(self) -> str:
        return self._model or self.configured_model or "upstream"

    @property
    def queue_depth(self) -> int:
        """Requests in flight upstream."""
        return self.in_flight

    # `running` stays the base's None: the upstream does not say how many it decodes.

    # --- lifecycle ---
    async def start(self) -> None:
        """Wait until the upstream lists its models (it may still be loading), pick the model."""
        self.upstream.open()
        delay = self.upstream.backoff
        while True:
            try:
                models = await self.models(refresh=True)
                break
            except UpstreamError as exc:
                log.warning("upstream %s not ready (%s); retrying in %.1f s",
                            self.upstream.host, exc.message, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        ids = [m.id for m in models]
        if self.configured_model and self.configured_model not in ids:
            log.warning("MODEL_NAME=%s is not listed by the upstream (%s); using it anyway",
                        self.configured_model, ", ".join(ids))
        self._model = self.configured_model or (ids[0] if ids else None)
        if self._model is None:
            raise UpstreamError("the upstream server lists no model at /models; set MODEL_NAME")
        self.loaded_at = time.time()

    async def close(self) -> None:
        await self.upstream.close()

    async def health(self) -> EngineHealth:
        """Loaded when the upstream answers `/models` (cached a few seconds)."""
        host = self.upstream.host
        if self.loaded_at is None:
            return EngineHealth(loaded=False, device="upstream", gpu_available=False,
                                detail=host)
        try:
            async with asyncio.timeout(_HEALTH_TIMEOUT):
                await self.models()
        except (EvalserveError, TimeoutError) as exc:
            reason = exc.message if isinstance(exc, EvalserveError) else "no answer in time"
            return EngineHealth(loaded=False, device="upstream", gpu_available=False,
                                detail=f"{host}: {reason}")
        return EngineHealth(loaded=True, device="upstream", gpu_available=False, detail=host)

    async def models(self, refresh: bool = False) -> list[ModelInfo]:
        """The upstream's `/models`, cached for a few seconds."""
        if not refresh and self._models and time.monotonic() - self._models_at < _MODELS_TTL:
            return self._models
        resp = await self.upstream.send("GET", "/models")
        with parsed("model list"):
            data = resp.json()["data"] or []
            self._models = [ModelInfo(id=str(m["id"]), owned_by=m.get("owned_by") or "upstream",
                                      created=int(m.get("created") or 0),
                                      loaded_at=self.loaded_at,
                                      max_model_len=_optional_int(m.get("max_model_len")))
                            for m in data]
        self._models_at = time.monotonic()
        return self._models

    # --- generation ---
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        task = asyncio.ensure_future(self._generate(request))
        self._tasks[request.request_id] = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if request.request_id not in self._aborted or (current and current.cancelling()):
                raise
            return GenerationResult(request.request_id, [
                CompletionOutput("", "abort", 0, index=i) for i in range(request.n)], 0)
        finally:
            self._tasks.pop(request.request_id, None)
            self._aborted.discard(request.request_id)

    async def _generate(self, request: GenerationRequest) -> GenerationResult:
        request.validate()
        body = request_body(request, request.model or self.model_id, stream=False)
        self.in_flight += 1
        try:
            resp = await self.upstream.send("POST", _path(request), body)
        finally:
            self.in_flight -= 1
        return generation_result(resp, request, self.count_tokens)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        if request.n != 1:
            raise InvalidInputError("streaming takes n=1")
        request.validate()
        body = request_body(request, request.model or self.model_id, stream=True)
        self.in_flight += 1
        self._streams.add(request.request_id)
        try:
            resp = await self.upstream.send("POST", _path(request), body, stream=True)
            try:
                async for delta in self._read_stream(resp, request):
                    yield delta
            finally:
                await resp.aclose()
        finally:
            self.in_flight -= 1
            self._streams.discard(request.request_id)
            self._aborted.discard(request.request_id)

    async def _read_stream(self, resp: httpx.Response, request: GenerationRequest
                           ) -> AsyncIterator[StreamDelta]:
        state = StreamState(request)
        with self.upstream.reading_stream():
            async for line in resp.aiter_lines():
                if request.request_id in self._aborted:
                    state.abort()
                    break
                for delta in state.feed(line):
                    yield delta
                if state.done:
                    break
        yield state.finish(self.count_tokens)

    async def abort(self, request_id: str) -> None:
        task = self._tasks.get(request_id)
        if task is not None or request_id in self._streams:
            self._aborted.add(request_id)
        if task is not None:
            task.cancel()


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _path(request: GenerationRequest) -> str:
    return "/chat/completions" if request.messages is not None else "/completions"
