"""Factuality by an LLM judge: the metrics' fallback when no AlignScore checkpoint is set.

Each (original, generated) pair is one item of the built-in `factuality` rubric
(`judge/rubrics/factuality.yaml`: the source, the summary, a score 1-5 alone) graded by
`Judge`, so it gets the judge's constrained answer (`{"score": <one of 1-5>}` where the
engine enforces JSON schemas, parsed otherwise), its retries and its logprob weighting.

The 1-5 rating maps linearly onto AlignScore's [0, 1] range, ``(rating - 1) / 4``::

    1 -> 0.0   2 -> 0.25   3 -> 0.5   4 -> 0.75   5 -> 1.0

Where the engine returns token log-probabilities, the rating is the judge's
`score_expected`: the probability-weighted mean over the scale at the digit's position
(tokens that read as the same rating, "4" and " 4", add up), so the score is continuous in
[0, 1]. Without log-probabilities, it is the mapping of the answered rating. Decoding is
greedy (temperature 0, seed 0), so a pair always gets the same number from the same model.
An item the judge leaves unscored raises `EngineError` with the judge's reason: a metric has
no "unscored".

Long texts are cut (the original first) so that the prompt fits the model's context.
`build_metrics_service` and `local_service` give a `MetricsService` with this judge injected.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from statistics import fmean
from typing import TYPE_CHECKING

from evalserve.errors import EngineError
from evalserve.judge.judge import Grade, Judge
from evalserve.judge.rubric import load_rubric
from evalserve.metrics.factuality import FactualityResult
from evalserve.metrics.service import MetricsService

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.settings import Settings

__all__ = [
    "JUDGE_METHOD",
    "RUBRIC_NAME",
    "FactualityJudge",
    "build_metrics_service",
    "factuality_item",
    "grade_to_score",
    "judge_factuality",
    "local_service",
    "rating_to_score",
]

JUDGE_METHOD = "llm_judge"
#: The built-in rubric the judge grades with.
RUBRIC_NAME = "factuality"
_ANSWER_TOKENS = 16
# Tokens kept for the instructions, the labels and the chat template around the two texts.
_OVERHEAD_TOKENS = 200

EngineProvider = Callable[[], Awaitable["Engine"]]


def rating_to_score(rating: float) -> float:
    """Map a 1-5 rating to [0, 1]: ``(rating - 1) / 4``, clamped."""
    return min(1.0, max(0.0, (float(rating) - 1.0) / 4.0))


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


def factuality_item(
    engine: Engine, original: str, generated: str, max_prompt_tokens: int = 2048
) -> dict[str, str]:
    """The rubric item for one pair, the texts cut to fit `max_prompt_tokens`: the generated
    text to a third of the room at most, the original to the rest."""
    room = max(64, max_prompt_tokens - _ANSWER_TOKENS - _OVERHEAD_TOKENS)
    generated = _clip(engine, generated, room // 3)
    original = _clip(engine, original, room - engine.count_tokens(generated))
    return {"source": original, "summary": generated}


def grade_to_score(grade: Grade, index: int = 0) -> float:
    """The factuality in [0, 1] of one grade (module doc); `EngineError` if it is unscored."""
    if grade.status != "scored" or grade.score is None:
        raise EngineError(
            f"the factuality judge gave no score for pair {index}: {grade.reason}; "
            f"raw answer {(grade.raw or '')[:80]!r}. Use a model that answers "
            '{"score": 1-5} (an engine that enforces JSON-schema constraints), or configure '
            "ALIGNSCORE_CKPT for AlignScore factuality"
        )
    rating = grade.score_expected if grade.score_expected is not None else grade.score
    return rating_to_score(rating)


async def judge_factuality(
    engine: Engine,
    originals: Sequence[str],
    generated: Sequence[str],
    max_prompt_tokens: int = 2048,
) -> FactualityResult:
    """Factuality of each generated text against its original, graded by `engine`.

    The lists must already be validated (non-empty, same length). The items are graded
    concurrently, so the engine batches them.

    Returns:
        ``FactualityResult`` with scores in [0, 1], their mean and ``method="llm_judge"``.
    """
    judge = Judge(engine, load_rubric(RUBRIC_NAME), temperature=0.0, seed=0)
    items = [factuality_item(engine, o, g, max_prompt_tokens)
             for o, g in zip(originals, generated)]
    grades = await asyncio.gather(*(judge.grade(item, i) for i, item in enumerate(items)))
    scores = [grade_to_score(g, i) for i, g in enumerate(grades)]
    return FactualityResult(scores, fmean(scores), JUDGE_METHOD)


class FactualityJudge:
    """The LLM factuality `MetricsService` is given: `await judge(originals, generated)`
    grades on the engine that `engine()` returns (awaited at each call, so a server can
    build this before its engine has loaded)."""

    def __init__(self, engine: EngineProvider, *, max_prompt_tokens: int = 2048) -> None:
        self._engine = engine
        self.max_prompt_tokens = max_prompt_tokens

    async def __call__(
        self, originals: Sequence[str], generated: Sequence[str]
    ) -> FactualityResult:
        """Factuality of each pair (`judge_factuality` on the provided engine)."""
        engine = await self._engine()
        return await judge_factuality(engine, originals, generated, self.max_prompt_tokens)


def build_metrics_service(settings: Settings, engine: EngineProvider) -> MetricsService:
    """The `MetricsService` of `settings` whose LLM factuality is graded on `engine()`
    (the server passes `AppState.wait_engine`), the prompt bounded by `MAX_MODEL_LEN`."""
    judge = FactualityJudge(engine, max_prompt_tokens=settings.max_model_len)
    return MetricsService(settings, factuality_judge=judge)


@contextlib.asynccontextmanager
async def local_service(settings: Settings) -> AsyncIterator[MetricsService]:
    """A `MetricsService` outside the server (CLI, scripts): its engine, needed only by the
    LLM-judge factuality, is started from `settings` (`engines.registry.running`) on first
    use, and closed on exit."""
    from evalserve.engines.registry import running

    async with contextlib.AsyncExitStack() as stack:
        started: list[Engine] = []
        lock = asyncio.Lock()

        async def engine() -> Engine:
            async with lock:
                if not started:
                    started.append(await stack.enter_async_context(running(settings)))
                return started[0]

        yield build_metrics_service(settings, engine)
