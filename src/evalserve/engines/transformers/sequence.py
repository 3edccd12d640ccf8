"""One sequence being decoded: its tokens, sampling state, stop handling and text deltas."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evalserve.engines.base import FinishReason, GenerationRequest, StreamDelta, TokenLogprob
from evalserve.errors import EngineError, EvalserveError

__all__ = ["Sequence"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Sequence:
    """Decoding state of one of a request's `n` sequences. Touched only by the decode thread,
    except `aborted`, which any thread may set."""

    request: GenerationRequest
    prompt_ids: list[int]
    max_tokens: int
    emit: Callable[[StreamDelta | BaseException], None]
    decode: Callable[[list[int]], str]
    generator: Any = None
    matcher: Any = None
    output_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    aborted: bool = False
    _text: str = ""
    _emitted: int = 0
    _logprobs_emitted: int = 0
    _closed: bool = False
    """True once the caller got its last item (the final delta or an error)."""

    @property
    def greedy(self) -> bool:
        return self.request.temperature == 0.0

    @property
    def last_token(self) -> int:
        return self.output_ids[-1]

    @property
    def position(self) -> int:
        """Position id of the last sampled token (not yet in the KV cache)."""
        return len(self.prompt_ids) + len(self.output_ids) - 1

    def append(self, token: int, eos_ids: frozenset[int], logprob: TokenLogprob | None) -> None:
        """Record a sampled token and decide whether the sequence is finished."""
        if self.matcher is not None and not self.matcher.is_terminated():
            self.matcher.accept_token(token)
        if token in eos_ids:
            self.output_ids.append(token)
            self._finish("stop")
            return
        self.output_ids.append(token)
        if logprob is not None:
            self.logprobs.append(logprob)
        self._text = self.decode(self.output_ids)
        if self._check_stop_strings():
            return
        if self.matcher is not None and self.matcher.is_terminated():
            self._finish("stop")
        elif len(self.output_ids) >= self.max_tokens:
            self._finish("length")
        else:
            self._emit_safe()

    def _check_stop_strings(self) -> bool:
        stops = self.request.stop
        if not stops:
            return False
        longest = max(len(s) for s in stops)
        start = max(0, self._emitted - longest)
        hits = [i for i in (self._text.find(s, start) for s in stops if s) if i >= 0]
        if not hits:
            return False
        self._text = self._text[: min(hits)]
        self._finish("stop")
        return True

    def _emit_safe(self) -> None:
        end = len(self._text)
        if self.request.stop:  # hold back what could be the start of a stop string
            end -= max(0, max(len(s) for s in self.request.stop) - 1)
        while end > self._emitted and self._text[end - 1] == "\ufffd":
            end -= 1
        if end > self._emitted:
            delta = StreamDelta(text=self._text[self._emitted : end], logprobs=self._new_logprobs())
            self.emit(delta)
            self._emitted = end

    def _new_logprobs(self) -> list[TokenLogprob] | None:
        if self.request.logprobs is None:
            return None
        fresh = self.logprobs[self._logprobs_emitted :]
        self._logprobs_emitted = len(self.logprobs)
        return fresh

    def _finish(self, reason: FinishReason) -> None:
        self.finish_reason = reason
        text = self._text.rstrip("\ufffd")
        self.emit(
            StreamDelta(
                text=text[self._emitted :],
                finish_reason=reason,
                logprobs=self._new_logprobs(),
                prompt_tokens=len(self.prompt_ids),
                completion_tokens=len(self.output_ids),
            )
        )
        self._emitted = len(text)
        self._closed = True

    def fail(self, exc: BaseException) -> None:
        """End this sequence with `exc` delivered to its caller (the decode thread calls it
        when anything of this sequence raised); the other sequences are not touched. A
        non-evalserve exception reaches the caller as an `EngineError` (a 5xx envelope)."""
        if self.finish_reason is None:
            self.finish_reason = "abort"
        if self._closed:  # the caller has its final delta already
            return
        self._closed = True
        if not isinstance(exc, EvalserveError):
            error = EngineError(f"the engine failed on this request ({type(exc).__name__}); "
                                "see the server log")
            error.__cause__ = exc
            exc = error
        try:
            self.emit(exc)
        except Exception:  # the caller cannot be told (its loop is gone): nothing more to do
            log.exception("request %s: the error could not be delivered",
                          self.request.request_id)

    def abort(self) -> None:
        """Finish now with `abort` (called by the decode thread when `aborted` is seen)."""
        if self.finish_reason is None:
            self._finish("abort")
