"""The seed 003 `/predict` contract as a library: prompts in, post-processed answers out.

Usable without HTTP: `await predict(engine, ["问题一", "问题二"], PredictOptions(...))`.
Every prompt is sent as one chat user message (the model's chat template applies); all
prompts of a batch go to the engine together so it decodes them in one continuous batch.
Answers are trimmed, cut at stop strings, and runaway repetition at their tail is collapsed
(`clean_answer`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalserve.engines.base import GenerationRequest
from evalserve.errors import InvalidInputError, PayloadTooLargeError

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.settings import Settings

__all__ = [
    "DEFAULT_STOPS",
    "PredictOptions",
    "Prediction",
    "check_prompts",
    "clean_answer",
    "collapse_tail_repetition",
    "cut_at_stops",
    "predict",
    "predict_many",
]

log = logging.getLogger(__name__)

#: Chat-template markers that end an answer when a model prints them as text.
DEFAULT_STOPS: tuple[str, ...] = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>")

# A repeated unit must hold at least one letter (any script, CJK included): runs of digits or
# punctuation ("1000000", "...", "……") are never collapsed.
_LETTER = re.compile(r"[^\W\d_]")
# Left at the end of an answer after a collapse ("yes, yes, yes," -> "yes,"): dropped.
_TRAILING_SEPARATORS = " \t\r\n,，、;；:："
_SENTENCE_END = frozenset(".!?。！？…")
_SEPARATOR = frozenset(",，、;；:：")


@dataclass(frozen=True)
class PredictOptions:
    """How answers are generated: output budget, sampling, stop strings, input limits."""

    max_tokens: int = 256
    temperature: float = 0.2
    top_p: float = 0.9
    repetition_penalty: float = 1.015
    stop: tuple[str, ...] = DEFAULT_STOPS
    max_prompt_chars: int = 20_000
    """Longest prompt accepted, in characters (`MAX_FIELD_CHARS`)."""
    max_prompt_tokens: int | None = None
    """Longest prompt accepted, in tokens (`MAX_MODEL_LEN - 1`); None: not checked here."""
    seed: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> PredictOptions:
        """Options from `MAX_NEW_TOKENS`, `TEMPERATURE`, `TOP_P`, `REPEAT_PENALTY`,
        `MAX_FIELD_CHARS` and `MAX_MODEL_LEN`."""
        values: dict[str, object] = {
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "repetition_penalty": settings.repeat_penalty,
            "max_prompt_chars": settings.max_field_chars,
            "max_prompt_tokens": settings.max_model_len - 1,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class Prediction:
    """One answer: the text returned to the client and what the engine generated."""

    text: str
    raw_text: str = ""
    completion_tokens: int = 0
    prompt_tokens: int = 0
    finish_reason: str = "stop"
    extra: dict[str, object] = field(default_factory=dict)


# ----------------------------------------------------------------------------- post-processing


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    cut = len(text)
    for stop in stops:
        if stop:
            at = text.find(stop)
            if 0 <= at < cut:
                cut = at
    return text[:cut]


def _periodic_suffix_start(text: str, period: int) -> int:
    """Start of the longest suffix of `text` in which every char equals the one `period`
    characters later (the suffix is then a unit of `period` chars repeated, plus a partial)."""
    j = len(text) - 1 - period
    while j >= 0 and text[j] == text[j + period]:
        j -= 1
    return j + 1


def _repeats(text: str, start: int, period: int) -> int:
    """Occurrences of the unit `text[start:start+period]` in `text[start:]`; a trailing
    partial counts when it lacks only non-letter characters (a missing final "。" or space)."""
    span = len(text) - start
    full, rest = divmod(span, period)
    if rest:
        missing = text[start + rest : start + period]
        if not _LETTER.search(missing) and not any(c.isdigit() for c in missing):
            full += 1
    return full


def collapse_tail_repetition(text: str, min_repeats: int = 3) -> str:
    """Collapse a unit (sentence, phrase, word, n-gram; any script) repeated `min_repeats`+
    times at the end of `text` to its first occurrence; a cut-off last repetition is dropped.

    The unit must contain a letter, and a one-character unit must repeat at least
    `min_repeats + 1` times, so numbers ("1000000"), ellipses and "VIII" are left alone.
    Among the candidate periods, the one removing the most text wins (a repeated sentence
    beats a repeated word inside it); collapsing repeats until nothing changes.
    """
    text = text.rstrip()
    for _ in range(8):
        best_keep = n = len(text)
        best = (0, n, 1)
        for period in range(1, n // 2 + 1):
            if period >= best_keep:  # keep = start + period can no longer shrink
                break
            start = _periodic_suffix_start(text, period)
            if n - start < 2 * period:
                continue
            unit = text[start : start + period]
            needed = min_repeats + 1 if period == 1 else min_repeats
            if not _LETTER.search(unit) or _repeats(text, start, period) < needed:
                continue
            if start + period < best_keep:
                best_keep = start + period
                best = (start, period, needed)
        if best_keep == n:
            return text
        text = text[: _aligned_end(text, *best)].rstrip(_TRAILING_SEPARATORS)
    return text


def _aligned_end(text: str, start: int, period: int, needed: int) -> int:
    """Where the kept first occurrence ends: the periodic region may start mid-sentence
    (". Rome is old" repeated), so prefer the rotation of the unit that ends at a sentence
    end, else at a separator, as long as that rotation still repeats `needed` times."""
    for boundary in (_SENTENCE_END, _SEPARATOR):
        for shift in range(period):
            end = start + period + shift
            if end > len(text):
                break
            before = text[:end].rstrip()
            if before and before[-1] in boundary and \
                    _repeats(text, start + shift, period) >= needed:
                return end
    return start + period


def clean_answer(text: str, stops: Sequence[str] = DEFAULT_STOPS) -> str:
    """The answer a grader receives: cut at stop strings, tail repetition collapsed, trimmed."""
    return collapse_tail_repetition(cut_at_stops(text, stops)).strip()


# ----------------------------------------------------------------------------- prediction


def check_prompts(prompt: object, *, batch_mode: bool, max_chars: int,
                  max_prompts: int | None = None) -> list[str]:
    """The prompts of a `/predict` body's `prompt` value, or an InvalidInputError saying what
    to fix. A list is accepted only in batch mode, and of at most `max_prompts` prompts
    (`MAX_PREDICT_PROMPTS`; PayloadTooLargeError beyond)."""
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list):
        if not batch_mode:
            raise InvalidInputError(
                "prompt must be a string: this server is not in batch mode (a list of prompts "
                "needs BATCH_MODE=1); send one prompt per request"
            )
        for i, item in enumerate(prompt):
            if not isinstance(item, str):
                kind = "a list" if isinstance(item, list) else type(item).__name__
                raise InvalidInputError(
                    f"prompt[{i}] must be a string, got {kind}: send a flat list of strings"
                )
        if max_prompts is not None and len(prompt) > max_prompts:
            raise PayloadTooLargeError(
                f"{len(prompt)} prompts in one request; the limit is {max_prompts} "
                "(MAX_PREDICT_PROMPTS): split the list into several requests"
            )
        prompts = list(prompt)
    elif prompt is None:
        raise InvalidInputError('prompt is required: send {"prompt": "your question"}')
    else:
        shape = "a string or a list of strings" if batch_mode else "a string"
        raise InvalidInputError(f"prompt must be {shape}, got {type(prompt).__name__}")
    for i, item in enumerate(prompts):
        if len(item) > max_chars:
            where = f"prompt[{i}]" if isinstance(prompt, list) else "prompt"
            raise InvalidInputError(
                f"{where} has {len(item)} characters; the limit is {max_chars} "
                "(MAX_FIELD_CHARS): shorten it"
            )
    return prompts


def _request(prompt: str, options: PredictOptions) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": prompt}],
        max_tokens=options.max_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        repetition_penalty=options.repetition_penalty,
        stop=list(options.stop),
        seed=options.seed,
    )


async def _check_lengths(engine: Engine, prompts: Sequence[str], limit: int | None) -> None:
    """Refuse a prompt longer than the model takes; long prompts are tokenised off the
    event loop (a huge one would freeze every route while it is counted)."""
    if limit is None:
        return
    for i, prompt in enumerate(prompts):
        # A token covers at least one UTF-8 byte: short prompts need no tokenizer call.
        if len(prompt.encode("utf-8")) < limit // 2:
            continue
        tokens = await asyncio.to_thread(engine.count_tokens, prompt)
        if tokens >= limit:
            where = f"prompt[{i}]" if len(prompts) > 1 else "prompt"
            raise InvalidInputError(
                f"{where} has about {tokens} tokens; the model takes at most {limit} "
                "(MAX_MODEL_LEN - 1): shorten it"
            )


async def predict_many(
    engine: Engine, prompts: Sequence[str], options: PredictOptions
) -> list[Prediction]:
    """Answer every prompt, in order, generating them together in one engine batch.

    Blank prompts are answered with "" without generating. If one prompt fails (e.g. it is
    longer than the model's context) the others are aborted and the error is raised.
    """
    await _check_lengths(engine, prompts, options.max_prompt_tokens)
    todo = [i for i, p in enumerate(prompts) if p.strip()]
    requests = [_request(prompts[i], options) for i in todo]
    try:
        results = await engine.generate_many(requests) if requests else []
    except BaseException:
        await asyncio.gather(*(engine.abort(r.request_id) for r in requests),
                             return_exceptions=True)
        raise
    out = [Prediction(text="") for _ in prompts]
    for i, result in zip(todo, results):
        first = result.outputs[0]
        out[i] = Prediction(
            text=clean_answer(first.text, options.stop),
            raw_text=first.text,
            completion_tokens=first.completion_tokens,
            prompt_tokens=result.prompt_tokens,
            finish_reason=first.finish_reason,
        )
    return out


async def predict(engine: Engine, prompts: Sequence[str], options: PredictOptions) -> list[str]:
    """The answers to `prompts`, in order (see `predict_many`)."""
    return [p.text for p in await predict_many(engine, prompts, options)]
