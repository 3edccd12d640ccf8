"""Seed 002's `/generate` as a library: a plain-language summary of one text.

Usable without HTTP: `await summarize(engine, settings, text)`. The text goes to the engine
as the user turn under `SUMMARY_INSTRUCTION`, with the seed's sampling settings
(`MAX_NEW_TOKENS`, `TEMPERATURE`, `TOP_P`, `REPEAT_PENALTY`) unless overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalserve.engines.base import GenerationRequest
from evalserve.errors import InvalidInputError

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.settings import Settings

__all__ = ["SUMMARY_INSTRUCTION", "Summary", "summarize"]

SUMMARY_INSTRUCTION = (
    "Write a plain-language summary of the text below for a reader without medical or "
    "technical training. Use short sentences and everyday words, explain any technical term "
    "you keep, keep every important fact and number, and add nothing that is not in the text. "
    "Write the summary in the same language as the text. Answer with the summary only."
)


@dataclass(frozen=True)
class Summary:
    """A generated plain-language summary."""

    summary: str
    model: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


async def summarize(
    engine: Engine,
    settings: Settings,
    text: str,
    *,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    repeat_penalty: float | None = None,
) -> Summary:
    """A plain-language summary of `text` by `engine` (module doc for the sampling).

    Raises:
        InvalidInputError: `text` is blank (nothing is sent to the engine).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("`text` is empty: send the text to summarise")
    s = settings
    request = GenerationRequest(
        messages=[
            {"role": "system", "content": SUMMARY_INSTRUCTION},
            {"role": "user", "content": text},
        ],
        max_tokens=max_new_tokens or s.max_new_tokens,
        temperature=s.temperature if temperature is None else temperature,
        top_p=s.top_p if top_p is None else top_p,
        repetition_penalty=s.repeat_penalty if repeat_penalty is None else repeat_penalty,
    )
    result = await engine.generate(request)
    out = result.outputs[0]
    return Summary(
        summary=out.text.strip(),
        model=engine.model_id,
        finish_reason=out.finish_reason,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=out.completion_tokens,
    )
