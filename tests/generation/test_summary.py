"""Seed 002's `/generate` summary as a library call."""

from __future__ import annotations

import pytest

from evalserve.errors import InvalidInputError
from evalserve.generation.summary import SUMMARY_INSTRUCTION, Summary, summarize
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine


async def test_summary_with_the_seed_sampling_settings(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "  Short and plain.  ")
    summary = await summarize(engine, settings, "Un texto médico.")
    assert summary == Summary(summary="Short and plain.", model="scripted", finish_reason="stop",
                              prompt_tokens=summary.prompt_tokens, completion_tokens=3)
    (request,) = engine.requests
    assert request.messages == [{"role": "system", "content": SUMMARY_INSTRUCTION},
                                {"role": "user", "content": "Un texto médico."}]
    assert (request.max_tokens, request.temperature, request.top_p,
            request.repetition_penalty) == (settings.max_new_tokens, settings.temperature,
                                            settings.top_p, settings.repeat_penalty)


async def test_overrides_win_and_zero_temperature_is_kept(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "x")
    await summarize(engine, settings, "text", max_new_tokens=7, temperature=0.0, top_p=0.5,
                    repeat_penalty=1.3)
    request = engine.requests[0]
    assert (request.max_tokens, request.temperature, request.top_p,
            request.repetition_penalty) == (7, 0.0, 0.5, 1.3)


@pytest.mark.parametrize("text", ["", "   ", None])
async def test_blank_text_is_refused_before_the_engine(settings: Settings, text: object) -> None:
    engine = ScriptedEngine(lambda r: "x")
    with pytest.raises(InvalidInputError, match="text"):
        await summarize(engine, settings, text)  # type: ignore[arg-type]
    assert engine.requests == []
