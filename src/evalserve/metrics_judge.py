"""Factuality by an LLM judge: the fallback when no AlignScore checkpoint is configured.

Each (original, generated) pair becomes one chat request asking the served model to rate, on
a 1-5 scale, how well the generated text is supported by the original. The answer is forced
by a JSON-schema constraint, ``{"score": <one of 1, 2, 3, 4, 5>}``, so it always parses.

The 1-5 rating maps linearly onto AlignScore's [0, 1] range, ``(rating - 1) / 4``::

    1 -> 0.0   2 -> 0.25   3 -> 0.5   4 -> 0.75   5 -> 1.0

Where the engine returns token log-probabilities, the score is the probability-weighted
mean of that mapping over the five ratings at the position where the digit is generated
(the probabilities are those after the constraint mask, renormalised over the digits), so it
is a continuous value in [0, 1] rather than one of five steps. Without log-probabilities, it
is the mapping of the sampled rating. Decoding is greedy (temperature 0), so a pair always
gets the same number from the same model.

Long texts are cut (the original first) so that the prompt fits the model's context.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from statistics import fmean

from evalserve.engines.base import Engine, GenerationRequest, GenerationResult, OutputConstraint
from evalserve.errors import EngineError
from evalserve.metrics.factuality import FactualityResult

__all__ = [
    "JUDGE_METHOD",
    "RATING_SCHEMA",
    "rating_to_score",
    "judge_request",
    "score_from_result",
    "judge_factuality",
]

JUDGE_METHOD = "llm_judge"
RATINGS: tuple[int, ...] = (1, 2, 3, 4, 5)

RATING_SCHEMA: dict = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": list(RATINGS)}},
    "required": ["score"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You are a careful fact checker. Rate how factually consistent the SUMMARY is with the "
    "SOURCE, judging only whether its claims are supported by the SOURCE (not its style):\n"
    "5 = every claim is supported by the source;\n"
    "4 = supported, with a minor unsupported detail;\n"
    "3 = some claims are unsupported;\n"
    "2 = most claims are unsupported or distorted;\n"
    "1 = it contradicts the source or is unrelated to it.\n"
    'Answer with JSON: {"score": <1-5>}.'
)

_MAX_TOKENS = 16
# Tokens kept for the system prompt, the labels and the chat template around the two texts.
_OVERHEAD_TOKENS = 200


def rating_to_score(rating: float) -> float:
    """Map a 1-5 rating to [0, 1]: ``(rating - 1) / 4``."""
    return (float(rating) - 1.0) / 4.0


def _clip(engine: Engine, text: str, budget: int) -> str:
    """`text` cut to about `budget` tokens of `engine` (by proportional character cuts)."""
    if budget <= 0:
        return ""
    for _ in range(4):
        n = engine.count_tokens(text)
        if n <= budget:
            return text
        text = text[: max(1, int(len(text) * budget / n * 0.95))]
    return text


def judge_request(
    engine: Engine, original: str, generated: str, max_prompt_tokens: int = 2048
) -> GenerationRequest:
    """The constrained chat request that rates one pair (texts cut to fit the context)."""
    room = max(64, max_prompt_tokens - _MAX_TOKENS - _OVERHEAD_TOKENS)
    generated = _clip(engine, generated, room // 3)
    original = _clip(engine, original, room - engine.count_tokens(generated))
    user = f"SOURCE:\n{original}\n\nSUMMARY:\n{generated}\n\nScore from 1 to 5:"
    return GenerationRequest(
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ],
        max_tokens=_MAX_TOKENS,
        temperature=0.0,
        seed=0,
        logprobs=5 if engine.supports_logprobs else None,
        constraint=OutputConstraint(json_schema=RATING_SCHEMA),
    )


def _weighted_rating(result: GenerationResult) -> float | None:
    """Probability-weighted rating at the digit position, or None without logprobs."""
    logprobs = result.outputs[0].logprobs
    if not logprobs:
        return None
    digits = {str(r) for r in RATINGS}
    for step in reversed(logprobs):
        if step.token.strip() not in digits:
            continue
        probs: dict[int, float] = {}
        for token, lp in [*step.top, (step.token, step.logprob)]:
            key = token.strip()
            if key in digits and math.isfinite(lp):
                probs[int(key)] = max(probs.get(int(key), 0.0), math.exp(lp))
        total = sum(probs.values())
        if total <= 0:
            return None
        return sum(r * p for r, p in probs.items()) / total
    return None


def score_from_result(result: GenerationResult) -> float:
    """The factuality in [0, 1] of one judge answer (see the module doc for the mapping)."""
    weighted = _weighted_rating(result)
    if weighted is not None:
        return min(1.0, max(0.0, rating_to_score(weighted)))
    text = result.text.strip()
    try:
        rating = json.loads(text)["score"]
    except (ValueError, KeyError, TypeError) as exc:
        raise EngineError(
            f"the factuality judge answered {text[:80]!r}, not {{\"score\": 1-5}}; the engine "
            "does not enforce JSON-schema constraints: configure ALIGNSCORE_CKPT instead"
        ) from exc
    if rating not in RATINGS:
        raise EngineError(f"the factuality judge answered a rating of {rating!r}, not 1-5")
    return rating_to_score(rating)


async def judge_factuality(
    engine: Engine,
    originals: Sequence[str],
    generated: Sequence[str],
    max_prompt_tokens: int = 2048,
) -> FactualityResult:
    """Factuality of each generated text against its original, rated by `engine`.

    The lists must already be validated (non-empty, same length). Requests go to the engine
    together, so it batches them.

    Returns:
        ``FactualityResult`` with scores in [0, 1], their mean and ``method="llm_judge"``.
    """
    requests = [
        judge_request(engine, o, g, max_prompt_tokens) for o, g in zip(originals, generated)
    ]
    results = await engine.generate_many(requests)
    scores = [score_from_result(r) for r in results]
    return FactualityResult(scores, fmean(scores), JUDGE_METHOD)
