"""The `openai` engine: evalserve in front of any OpenAI-compatible server (`vllm serve`,
llama.cpp, TGI, SGLang, another evalserve).

One pooled `httpx.AsyncClient`; connection errors, 429 and 5xx are retried with exponential
backoff (`UPSTREAM_RETRIES`, honouring `Retry-After`); failures become `UpstreamError` (502) or
`UpstreamTimeoutError` (504), and a 4xx that is the client's fault keeps its status and message.
Structured output is sent the way current vLLM honours it: `response_format` for JSON, and
`structured_outputs` for regex and choice (never the removed `guided_*` fields).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

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
from evalserve.errors import (
    ConfigurationError,
    EvalserveError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)

if TYPE_CHECKING:
    import httpx

    from evalserve.settings import Settings

__all__ = ["OpenAIEngine", "request_body"]

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CLIENT_STATUSES = frozenset({400, 404, 409, 413, 422})
_MODELS_TTL = 10.0
_HEALTH_TIMEOUT = 3.0  # seconds; /health must answer quickly even if the upstream hangs


def request_body(request: GenerationRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The upstream JSON body for `request`: chat when it has messages, else completions."""
    body: dict[str, Any] = {"model": model, "max_tokens": request.max_tokens,
                            "temperature": request.temperature, "top_p": request.top_p,
                            "n": request.n}
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.presence_penalty:
        body["presence_penalty"] = request.presence_penalty
    if request.frequency_penalty:
        body["frequency_penalty"] = request.frequency_penalty
    if request.repetition_penalty != 1.0:
        body["repetition_penalty"] = request.repetition_penalty  # vLLM extension
    if request.messages is not None:
        body["messages"] = request.messages
        if request.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = request.logprobs
    else:
        body["prompt"] = request.prompt
        if request.logprobs is not None:
            body["logprobs"] = request.logprobs
    c = request.constraint
    if c is not None:
        if c.json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "output", "schema": c.json_schema, "strict": True}}
        elif c.json_object:
            body["response_format"] = {"type": "json_object"}
        elif c.regex is not None:
            body["structured_outputs"] = {"regex": c.regex}
        elif c.choice is not None:
            body["structured_outputs"] = {"choice": list(c.choice)}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _finish(reason: str | None) -> str:
    return reason if reason in ("stop", "length", "abort") else "stop"


def _completion_logprobs(lp: dict[str, Any] | None, k: int) -> list[TokenLogprob] | None:
    if not lp or lp.get("tokens") is None:
        return None
    tops = lp.get("top_logprobs") or []
    out = []
    for i, (token, value) in enumerate(zip(lp["tokens"], lp.get("token_logprobs") or [])):
        top = tops[i] if i < len(tops) and tops[i] else {}
        ranked = sorted(top.items(), key=lambda kv: -kv[1])[:k]
        out.append(TokenLogprob(token, float(value if value is not None else 0.0),
                                [(t, float(v)) for t, v in ranked]))
    return out


def _choice_content(choice: dict[str, Any], part: str | None, k: int, want_logprobs: bool
                    ) -> tuple[str, list[TokenLogprob] | None]:
    """Text and logprobs of one choice: chat (`part` is "message" or "delta") or completion."""
    if part is not None:
        text = (choice.get(part) or {}).get("content") or ""
        logprobs = _chat_logprobs(choice.get("logprobs"), k)
    else:
        text = choice.get("text") or ""
        logprobs = _completion_logprobs(choice.get("logprobs"), k)
    return text, logprobs if want_logprobs else None


def _chat_logprobs(lp: dict[str, Any] | None, k: int) -> list[TokenLogprob] | None:
    if not lp or lp.get("content") is None:
        return None
    return [TokenLogprob(e["token"], float(e["logprob"]),
                         [(t["token"], float(t["logprob"])) for t in e.get("top_logprobs") or []
                          ][:k]) for e in lp["content"]]


def _error_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for field in ("message", "detail", "error"):
            if data.get(field):
                return str(data[field])
    return str(data)[:500]


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None


class OpenAIEngine(Engine):
    """Generates through an upstream OpenAI-compatible HTTP server."""

    supports_logprobs = True
    supports_constraints = True

    def __init__(self, base_url: str, *, api_key: str | None = None, model: str | None = None,
                 timeout: float = 120.0, retries: int = 2, capacity: int = 32,
                 backoff: float = 0.25, transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.configured_model = model
        self.timeout = timeout
        self.retries = retries
        self.capacity = capacity
        self.backoff = backoff
        self.transport = transport
        self._client: httpx.AsyncClient | None = None
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
    def model_id(self) -> str:
        return self._model or self.configured_model or "upstream"

    @property
    def queue_depth(self) -> int:
        """Requests in flight upstream."""
        return self.in_flight

    # --- lifecycle ---
    def _open(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            quiet = logging.getLogger("httpx")
            if quiet.level == logging.NOTSET:  # one INFO line per upstream call otherwise
                quiet.setLevel(logging.WARNING)
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers=headers, transport=self.transport,
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                limits=httpx.Limits(max_connections=max(self.capacity * 2, 16),
                                    max_keepalive_connections=max(self.capacity, 8)),
            )
        return self._client

    async def start(self) -> None:
        """Wait until the upstream lists its models (it may still be loading), pick the model."""
        self._open()
        delay = self.backoff
        while True:
            try:
                models = await self.models(refresh=True)
                break
            except UpstreamError as exc:
                log.warning("upstream %s not ready (%s); retrying in %.1f s",
                            self.base_url, exc.message, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        ids = [m.id for m in models]
        if self.configured_model and self.configured_model not in ids:
            log.warning("MODEL_NAME=%s is not listed by the upstream (%s); using it anyway",
                        self.configured_model, ", ".join(ids))
        self._model = self.configured_model or (ids[0] if ids else None)
        if self._model is None:
            raise UpstreamError(f"the upstream {self.base_url} serves no model")
        self.loaded_at = time.time()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def health(self) -> EngineHealth:
        """Loaded when the upstream answers `/models` (cached a few seconds)."""
        if self.loaded_at is None:
            return EngineHealth(loaded=False, device="upstream", gpu_available=False,
                                detail=self.base_url)
        try:
            async with asyncio.timeout(_HEALTH_TIMEOUT):
                await self.models()
        except (EvalserveError, TimeoutError) as exc:
            reason = exc.message if isinstance(exc, EvalserveError) else "no answer in time"
            return EngineHealth(loaded=False, device="upstream", gpu_available=False,
                                detail=f"{self.base_url}: {reason}")
        return EngineHealth(loaded=True, device="upstream", gpu_available=False,
                            detail=self.base_url)

    async def models(self, refresh: bool = False) -> list[ModelInfo]:
        """The upstream's `/models`, cached for a few seconds."""
        if not refresh and self._models and time.monotonic() - self._models_at < _MODELS_TTL:
            return self._models
        resp = await self._send("GET", "/models")
        data = resp.json().get("data") or []
        self._models = [ModelInfo(id=m["id"], owned_by=m.get("owned_by") or "upstream",
                                  created=int(m.get("created") or 0), loaded_at=self.loaded_at,
                                  max_model_len=m.get("max_model_len")) for m in data]
        self._models_at = time.monotonic()
        return self._models

    # --- HTTP ---
    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                    stream: bool = False) -> httpx.Response:
        """Send with retries on connection errors, 429 and 5xx; map failures to our errors."""
        import httpx

        client = self._open()
        attempt = 0
        while True:
            delay = self.backoff * 2**attempt
            try:
                request = client.build_request(method, path, json=body)
                resp = await client.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout) and attempt < self.retries:
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                raise UpstreamTimeoutError(
                    f"the upstream {self.base_url} did not answer within "
                    f"{self.timeout:g} s (UPSTREAM_TIMEOUT)") from None
            except httpx.TransportError as exc:
                if attempt < self.retries:
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                raise UpstreamError(f"the upstream {self.base_url} cannot be reached: "
                                    f"{type(exc).__name__}: {exc}") from None
            if resp.status_code < 400:
                return resp
            if stream:
                await resp.aread()
                await resp.aclose()
            if resp.status_code in _RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                await asyncio.sleep(min(_retry_after(resp) or delay, 10.0))
                continue
            raise self._error(resp)

    def _error(self, resp: httpx.Response) -> EvalserveError:
        status, message = resp.status_code, _error_message(resp)
        if status == 404:
            return NotFoundError(f"upstream: {message}")
        if status in _CLIENT_STATUSES or (400 <= status < 500 and status not in (401, 403, 429)):
            exc = InvalidInputError(f"upstream: {message}")
            exc.status = status
            return exc
        if status in (401, 403):
            return UpstreamError(f"the upstream {self.base_url} refused our credentials "
                                 f"({status}: {message}); check OPENAI_API_KEY")
        if status == 429:
            return RateLimitError(f"upstream: {message}",
                                  retry_after=int(_retry_after(resp) or 1))
        if status == 504:
            return UpstreamTimeoutError(f"upstream {status}: {message}")
        return UpstreamError(f"upstream {status}: {message}")

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
        chat = request.messages is not None
        body = request_body(request, self.model_id, stream=False)
        self.in_flight += 1
        try:
            resp = await self._send("POST", "/chat/completions" if chat else "/completions", body)
        finally:
            self.in_flight -= 1
        try:
            data = resp.json()
            choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(f"the upstream answered an unexpected body: {exc}") from None
        usage = data.get("usage") or {}
        k = request.logprobs or 0
        outputs = []
        for i, choice in enumerate(choices):
            text, logprobs = _choice_content(choice, "message" if chat else None, k,
                                             request.logprobs is not None)
            if len(choices) == 1 and usage.get("completion_tokens") is not None:
                tokens = int(usage["completion_tokens"])
            elif logprobs is not None:
                tokens = len(logprobs)
            else:
                tokens = int(usage.get("completion_tokens", 0)) // max(1, len(choices))
            reason: Any = _finish(choice.get("finish_reason"))
            outputs.append(CompletionOutput(text, reason, tokens, logprobs, index=i))
        prompt_tokens = usage.get("prompt_tokens")
        if prompt_tokens is None:
            prompt_tokens = self.count_tokens(request.prompt or json.dumps(request.messages))
        return GenerationResult(request.request_id, outputs, int(prompt_tokens))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        if request.n != 1:
            raise InvalidInputError("streaming takes n=1")
        chat = request.messages is not None
        body = request_body(request, self.model_id, stream=True)
        self.in_flight += 1
        self._streams.add(request.request_id)
        try:
            resp = await self._send("POST", "/chat/completions" if chat else "/completions",
                                    body, stream=True)
            try:
                async for delta in self._read_stream(resp, request, chat):
                    yield delta
            finally:
                await resp.aclose()
        finally:
            self.in_flight -= 1
            self._streams.discard(request.request_id)
            self._aborted.discard(request.request_id)

    async def _read_stream(self, resp: httpx.Response, request: GenerationRequest,
                           chat: bool) -> AsyncIterator[StreamDelta]:
        import httpx

        k = request.logprobs or 0
        final: StreamDelta | None = None
        usage: dict[str, Any] = {}
        count = 0
        try:
            async for line in resp.aiter_lines():
                if request.request_id in self._aborted:
                    final = StreamDelta("", "abort")
                    break
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    err = chunk["error"]
                    raise UpstreamError("upstream: " + str(
                        err.get("message") if isinstance(err, dict) else err))
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    text, lps = _choice_content(choice, "delta" if chat else None, k,
                                                request.logprobs is not None)
                    count += len(lps) if lps is not None else (1 if text else 0)
                    reason = choice.get("finish_reason")
                    if reason is not None:
                        final = StreamDelta(text, _finish(reason), lps)  # type: ignore
                    elif text or lps:
                        yield StreamDelta(text, logprobs=lps)
        except httpx.TimeoutException:
            raise UpstreamTimeoutError(f"the upstream {self.base_url} stopped streaming for "
                                       f"{self.timeout:g} s (UPSTREAM_TIMEOUT)") from None
        except httpx.TransportError as exc:
            raise UpstreamError(f"the upstream stream broke: {type(exc).__name__}: {exc}"
                                ) from None
        except json.JSONDecodeError as exc:
            raise UpstreamError(f"the upstream sent a malformed stream chunk: {exc}") from None
        final = final or StreamDelta("", "stop")
        final.prompt_tokens = int(usage.get("prompt_tokens") or self.count_tokens(
            request.prompt or json.dumps(request.messages)))
        final.completion_tokens = int(usage.get("completion_tokens") or count)
        yield final

    async def abort(self, request_id: str) -> None:
        task = self._tasks.get(request_id)
        if task is not None or request_id in self._streams:
            self._aborted.add(request_id)
        if task is not None:
            task.cancel()
