"""`MetricsService`: settings applied, the factuality method chosen, flat per-item scores."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics import FactualityResult, readability, rouge_l
from evalserve.metrics.service import MetricsService
from evalserve.settings import Settings


class FakeJudge:
    """An injected LLM factuality: 0.5 for every pair; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str]]] = []

    async def __call__(self, originals: Sequence[str], generated: Sequence[str]
                       ) -> FactualityResult:
        self.calls.append((list(originals), list(generated)))
        return FactualityResult([0.5] * len(originals), 0.5, "llm_judge")


async def test_factuality_uses_the_injected_judge_on_validated_pairs(settings: Settings) -> None:
    judge = FakeJudge()
    service = MetricsService(settings, factuality_judge=judge)
    assert service.factuality_method == "llm_judge"
    result = await service.factuality(("a", "b"), ("c", "d"))
    assert result.scores == [0.5, 0.5] and judge.calls == [(["a", "b"], ["c", "d"])]
    with pytest.raises(InvalidInputError, match="generated"):
        await service.factuality(["a", "b"], ["c"])
    assert len(judge.calls) == 1


async def test_without_a_judge_factuality_says_how_to_configure(settings: Settings) -> None:
    service = MetricsService(settings)
    with pytest.raises(ConfigurationError, match="ALIGNSCORE_CKPT"):
        await service.factuality(["a"], ["b"])
    assert (await service.score_pairs("rouge_l", ["a b"], ["a b"])).rows == [{"rouge_l": 1.0}]


async def test_alignscore_when_a_checkpoint_is_set(settings: Settings, tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    judge = FakeJudge()
    service = MetricsService(settings.model_copy(update={
        "alignscore_ckpt": ckpt, "alignscore_roberta_dir": roberta, "device": "cpu"}),
        factuality_judge=judge)
    assert service.factuality_method == "alignscore"
    result = await service.factuality(["The cat sat."], ["A cat."])
    assert result.method == "alignscore" and judge.calls == []


async def test_score_pairs_rows_means_and_missing_references(settings: Settings) -> None:
    service = MetricsService(settings, factuality_judge=FakeJudge())
    preds = ["The cat sat on the mat.", "Dogs bark.", "Birds sing."]
    refs = ["A cat sat on a mat.", None, "  "]
    scores = await service.score_pairs("rouge,readability,factuality", preds, refs)
    expected_rouge = rouge_l(preds[:1], refs[:1]).scores[0].f1  # type: ignore[list-item]
    read = readability(preds).scores
    assert scores.rows[0]["rouge_l"] == pytest.approx(expected_rouge)
    assert [r["rouge_l"] for r in scores.rows[1:]] == [None, None]
    assert [r["factuality"] for r in scores.rows] == [0.5, None, None]
    assert [r["fkgl"] for r in scores.rows] == pytest.approx([s.fkgl for s in read])
    assert scores.means["fkgl"] == pytest.approx(sum(s.fkgl for s in read) / 3)
    assert scores.means["rouge_l"] == pytest.approx(expected_rouge)
    assert scores.factuality_method == "llm_judge" and scores.methods == {
        "factuality": "llm_judge"}
    with pytest.raises(InvalidInputError, match="references"):
        await service.score_pairs("rouge_l", ["a"], ["a", "b"])


async def test_loss_without_targets_names_the_three_ways(settings: Settings) -> None:
    service = MetricsService(settings, factuality_judge=FakeJudge())
    with pytest.raises(InvalidInputError, match="texts_human.*targets.*LOSS_TARGETS"):
        service.resolve_targets(None, None)
    assert service.resolve_targets(None, {"x": 1}) == {"x": 1}
