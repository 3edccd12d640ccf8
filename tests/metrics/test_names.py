"""Metric names: canonical names, aliases, and the `lang` split."""

from __future__ import annotations

import pytest

from evalserve.errors import InvalidInputError
from evalserve.metrics.names import METRIC_NAMES, PAIR_METRICS, parse_metric_names, split_lang


def test_names_and_aliases_are_canonical_in_order_without_repeats() -> None:
    assert parse_metric_names("ROUGE, readability,bertscore,,rouge_l") == [
        "rouge_l", "readability", "relevance"]
    assert parse_metric_names(["alignscore", "Rouge-L", "factuality"]) == ["factuality",
                                                                           "rouge_l"]
    assert set(parse_metric_names(list(METRIC_NAMES))) == set(METRIC_NAMES)
    assert PAIR_METRICS == set(METRIC_NAMES) - {"readability"}


@pytest.mark.parametrize(("names", "words"), [
    ("rouge_l,bleu", ["unknown metric 'bleu'", "rouge_l, readability, relevance, factuality"]),
    (" , ", ["no metric named"]),
    ([], ["no metric named"]),
    (["rouge_l", 3], ["must be strings", "3"]),
])
def test_bad_names_say_what_is_accepted(names: object, words: list[str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_metric_names(names)  # type: ignore[arg-type]
    for word in words:
        assert word in info.value.message


@pytest.mark.parametrize(("lang", "expected"), [
    ("auto", ("auto", "en")), ("en", ("en", "en")), ("es", ("en", "es")),
    ("zh", ("zh", "zh")), ("zh-CN", ("zh", "zh-CN")), (" ca ", ("en", "ca")),
])
def test_split_lang(lang: str, expected: tuple[str, str]) -> None:
    assert split_lang(lang) == expected


@pytest.mark.parametrize("lang", ["", "   ", None])
def test_split_lang_needs_a_code(lang: object) -> None:
    with pytest.raises(InvalidInputError, match="language code"):
        split_lang(lang)  # type: ignore[arg-type]
