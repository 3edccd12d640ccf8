"""ROUGE-L parity with rouge-score (English), rouge-chinese (Chinese) and the seed-003 grader."""

from __future__ import annotations

import random
import sys

import jieba
import pytest
from rouge_chinese import Rouge
from rouge_score import rouge_scorer

from evalserve.errors import InvalidInputError
from evalserve.metrics import rouge_l
from tests.metrics.metrics_textgen import random_text, realistic_text

ZH_PIECES = (
    "我 爱 北京 天安门 今天 天气 很好 你 呢 Python3 编程 2024年 ABC abc 中文 测试 "
    "自然语言处理 机器学习 患者 医生 建议 休息 血压 稳定 。 ， ！ ？ ? … …… “引号。” ‘单’ "
    ", . ! GPT-4 3.5 Hello world 第二行"
).split()


def zh_text(rng: random.Random, k_max: int = 40) -> str:
    parts = []
    for piece in rng.choices(ZH_PIECES, k=rng.randint(1, k_max)):
        parts.append(piece + rng.choice(["", "", "", " ", "\n"]))
    return "".join(parts)


def english_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    preds = [random_text(rng) for _ in range(n)] + [realistic_text(rng) for _ in range(n // 4)]
    refs = [random_text(rng) for _ in range(n)] + [realistic_text(rng) for _ in range(n // 4)]
    preds[:3] = ["", "   ", "!!!"]
    refs[5] = ""
    return preds, refs


@pytest.mark.parametrize("rust", [True, False], ids=["rouge-score-rs", "rapidfuzz"])
@pytest.mark.parametrize("stem", [False, True])
@pytest.mark.parametrize("variant", ["rougeL", "rougeLsum"])
def test_english_equals_rouge_score(
    stem: bool, variant: str, rust: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not rust:  # the path taken when rouge-score-rs is not installed
        monkeypatch.setitem(sys.modules, "rouge_score_rs", None)
    preds, refs = english_pairs(300, seed=7)
    scorer = rouge_scorer.RougeScorer([variant], use_stemmer=stem)
    expected = [scorer.score(r, p)[variant] for r, p in zip(refs, preds)]
    result = rouge_l(preds, refs, lang="en", stem=stem, variant=variant)
    got = [(s.precision, s.recall, s.f1) for s in result.scores]
    assert got == [(e.precision, e.recall, e.fmeasure) for e in expected]
    assert result.languages == ["en"] * len(preds)
    assert result.mean.f1 == pytest.approx(sum(e.fmeasure for e in expected) / len(expected))
    assert any(0 < e.fmeasure < 1 for e in expected)  # the sample is not degenerate


def test_chinese_equals_rouge_chinese() -> None:
    rng = random.Random(11)
    preds = [zh_text(rng) for _ in range(200)]
    refs = [zh_text(rng) for _ in range(200)]
    reference = Rouge(metrics=["rouge-l"])
    expected = [
        reference.get_scores(" ".join(jieba.cut(p)), " ".join(jieba.cut(r)))[0]["rouge-l"]
        for p, r in zip(preds, refs)
    ]
    result = rouge_l(preds, refs, lang="zh")
    got = [(s.precision, s.recall, s.f1) for s in result.scores]
    assert got == [(e["p"], e["r"], e["f"]) for e in expected]
    assert result.languages == ["zh"] * len(preds)
    assert any(0 < e["f"] < 1 for e in expected)


def test_chinese_empty_scores_zero_instead_of_raising() -> None:
    result = rouge_l(["", "我爱北京"], ["我爱北京", "   "], lang="zh")
    assert [s.f1 for s in result.scores] == [0.0, 0.0]


def test_grader_recipe_is_the_organisers_formula() -> None:
    rng = random.Random(5)
    preds = [zh_text(rng) for _ in range(150)]
    refs = [zh_text(rng) for _ in range(150)]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = [
        scorer.score(" ".join(jieba.lcut(r)), " ".join(jieba.lcut(p)))["rougeL"]
        for p, r in zip(preds, refs)
    ]
    result = rouge_l(preds, refs, recipe="grader")
    assert [s.f1 for s in result.scores] == [e.fmeasure for e in expected]
    assert [s.precision for s in result.scores] == [e.precision for e in expected]
    assert result.languages == ["grader"] * len(preds)


def test_grader_recipe_ignores_chinese_characters() -> None:
    pred, ref = "患者需要休息", "患者需要休息和喝水"
    assert rouge_l([pred], [ref], recipe="grader").scores[0].f1 == 0.0
    assert rouge_l([pred], [ref], lang="zh").scores[0].f1 > 0.5


def test_auto_picks_tokenization_per_pair() -> None:
    result = rouge_l(
        ["我爱北京天安门", "the cat sat on the mat"],
        ["我爱北京", "a cat sat on a mat"],
        lang="auto",
    )
    assert result.languages == ["zh", "en"]
    assert result.scores[0].f1 == rouge_l(["我爱北京天安门"], ["我爱北京"], lang="zh").mean.f1


def test_identical_and_disjoint() -> None:
    result = rouge_l(["the cat sat", "dog"], ["the cat sat", "cat"])
    assert result.scores[0].f1 == 1.0
    assert result.scores[1].f1 == 0.0
    assert result.mean.f1 == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": ["a"], "references": ["a", "b"]}, "references"),
        ({"predictions": [], "references": []}, "empty"),
        ({"predictions": "abc", "references": ["a"]}, "list of strings"),
        ({"predictions": ["a", 3], "references": ["a", "b"]}, r"predictions\[1\]"),
        ({"predictions": ["a"], "references": ["a"], "lang": "fr"}, "lang"),
        ({"predictions": ["a"], "references": ["a"], "recipe": "x"}, "recipe"),
        ({"predictions": ["a"], "references": ["a"], "variant": "rouge1"}, "variant"),
        ({"predictions": ["我"], "references": ["我"], "lang": "zh", "variant": "rougeLsum"},
         "rougeLsum"),
        ({"predictions": ["a"], "references": ["a"], "recipe": "grader",
          "variant": "rougeLsum"}, "grader"),
    ],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        rouge_l(**kwargs)
