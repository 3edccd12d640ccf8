"""The OpenAI wire format: our requests as upstream bodies, upstream answers as our results.

Pure mapping, no I/O: `request_body` builds the JSON sent to `/completions` or
`/chat/completions`; `generation_result` reads a non-streamed answer; `StreamState` folds the
`data:` lines of a streamed one into `StreamDelta`s. Structured output is sent the way current
vLLM honours it: `response_format` for JSON, `structured_outputs` for regex and choice (never
the removed `guided_*` fields).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalserve.engines.base import (
    CompletionOutput,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    StreamDelta,
    TokenLogprob,
)
from evalserve.errors import UpstreamError

if TYPE_CHECKING:
    import httpx

__all__ = ["request_body", "generation_result", "StreamState", "parsed"]

CountTokens = Callable[[str], int]


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


def _finish(reason: str | None) -> FinishReason:
    if reason == "length":
        return "length"
    return "abort" if reason == "abort" else "stop"


#: What a malformed upstream body raises while it is read; `parsed` makes it an UpstreamError.
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError)


@contextlib.contextmanager
def parsed(what: str) -> Iterator[None]:
    """Reading an upstream body: any shape error becomes an `UpstreamError` (502) saying what
    was malformed, never an AttributeError or IndexError (a 500)."""
    try:
        yield
    except _MALFORMED as exc:
        raise UpstreamError(f"the upstream server answered a malformed {what} "
                            f"({type(exc).__name__}: {exc})") from None


def _alternatives(pairs: list[tuple[Any, Any]], k: int) -> list[tuple[str, float]]:
    """The finite alternatives, best first, at most `k`."""
    values = [(str(t), float(v)) for t, v in pairs if v is not None]
    ranked = sorted((tv for tv in values if math.isfinite(tv[1])), key=lambda tv: -tv[1])
    return ranked[:k]


def _completion_logprobs(lp: dict[str, Any] | None, k: int) -> list[TokenLogprob] | None:
    if not lp or lp.get("tokens") is None:
        return None
    tops = lp.get("top_logprobs") or []
    out = []
    for i, (token, value) in enumerate(zip(lp["tokens"], lp.get("token_logprobs") or [])):
        top = tops[i] if i < len(tops) and tops[i] else {}
        out.append(TokenLogprob(str(token), float(value if value is not None else 0.0),
                                _alternatives(list(top.items()), k)))
    return out


def _chat_logprobs(lp: dict[str, Any] | None, k: int) -> list[TokenLogprob] | None:
    if not lp or lp.get("content") is None:
        return None
    return [TokenLogprob(str(e["token"]), float(e["logprob"]), _alternatives(
        [(t["token"], t["logprob"]) for t in e.get("top_logprobs") or []], k))
        for e in lp["content"]]


def _choice_content(choice: dict[str, Any], part: str | None, k: int, want_logprobs: bool
                    ) -> tuple[str, list[TokenLogprob] | None]:
    """Text and logprobs of one choice: chat (`part` is "message" or "delta") or completion."""
    if part is not None:
        text = (choice.get(part) or {}).get("content") or ""
        logprobs = _chat_logprobs(choice.get("logprobs"), k) if want_logprobs else None
    else:
        text = choice.get("text") or ""
        logprobs = _completion_logprobs(choice.get("logprobs"), k) if want_logprobs else None
    if not isinstance(text, str):
        raise TypeError(f"the text of a choice is {type(text).__name__}, not a string")
    return text, logprobs


def _prompt_text(request: GenerationRequest) -> str:
    """What the prompt-token estimate counts when the upstream reports no usage."""
    return request.prompt or json.dumps(request.messages)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} is {type(value).__name__}, not an object")
    return value


def _usage(data: dict[str, Any]) -> dict[str, Any]:
    usage = data.get("usage")
    return {} if usage is None else _mapping(usage, "usage")


def generation_result(resp: httpx.Response, request: GenerationRequest,
                      count_tokens: CountTokens) -> GenerationResult:
    """The result of a non-streamed answer; a body that is not one is an `UpstreamError`."""
    with parsed("completion body"):
        return _generation_result(resp.json(), request, count_tokens)


def _generation_result(data: Any, request: GenerationRequest,
                       count_tokens: CountTokens) -> GenerationResult:
    chat = request.messages is not None
    data = _mapping(data, "the body")
    choices = [_mapping(c, "a choice") for c in data["choices"]]
    if not choices:
        raise ValueError("no choices")
    choices.sort(key=lambda c: int(c.get("index") or 0))
    usage = _usage(data)
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
            tokens = int(usage.get("completion_tokens") or 0) // max(1, len(choices))
        reason = _finish(choice.get("finish_reason"))
        outputs.append(CompletionOutput(text, reason, tokens, logprobs, index=i))
    prompt_tokens = usage.get("prompt_tokens")
    if prompt_tokens is None:
        prompt_tokens = count_tokens(_prompt_text(request))
    return GenerationResult(request.request_id, outputs, int(prompt_tokens))


@dataclass
class StreamState:
    """Folds the SSE lines of one streamed answer into deltas: text as it comes, then one final
    delta with the finish reason and the token counts (`finish`)."""

    request: GenerationRequest
    done: bool = False
    """True once the upstream sent `data: [DONE]`."""
    _final: StreamDelta | None = None
    _usage: dict[str, Any] = field(default_factory=dict)
    _count: int = 0

    def feed(self, line: str) -> list[StreamDelta]:
        """The text deltas one SSE line carries; an error chunk raises `UpstreamError`."""
        if not line.startswith("data:"):
            return []
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return []
        with parsed("stream chunk"):
            return self._feed(json.loads(data))

    def _feed(self, chunk: Any) -> list[StreamDelta]:
        chunk = _mapping(chunk, "the chunk")
        if chunk.get("error"):
            err = chunk["error"]
            raise UpstreamError("upstream: " + str(
                err.get("message") if isinstance(err, dict) else err))
        self._usage = _usage(chunk) or self._usage
        part = "delta" if self.request.messages is not None else None
        k = self.request.logprobs or 0
        deltas = []
        for choice in chunk.get("choices") or []:
            text, lps = _choice_content(_mapping(choice, "a choice"), part, k,
                                        self.request.logprobs is not None)
            self._count += len(lps) if lps is not None else (1 if text else 0)
            reason = choice.get("finish_reason")
            if reason is not None:
                self._final = StreamDelta(text, _finish(reason), lps)
            elif text or lps:
                deltas.append(StreamDelta(text, logprobs=lps))
        return deltas

    def abort(self) -> None:
        """The stream was aborted: it finishes with `abort`, whatever the upstream said."""
        self._final = StreamDelta("", "abort")

    def finish(self, count_tokens: CountTokens) -> StreamDelta:
        """The last delta: finish reason (`stop` if none came) and the usage, else estimates."""
        final = self._final or StreamDelta("", "stop")
        with parsed("stream usage"):
            final.prompt_tokens = int(self._usage.get("prompt_tokens")
                                      or count_tokens(_prompt_text(self.request)))
            final.completion_tokens = int(self._usage.get("completion_tokens") or self._count)
        return final
