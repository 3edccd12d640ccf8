"""ROUGE-L's tokenizers: rouge-score's English runs, rouge-chinese's jieba tokens."""

from __future__ import annotations

import random

from rouge_score import tokenize as rs_tokenize
from rouge_score.tokenizers import DefaultTokenizer

from evalserve.metrics import rouge
from evalserve.metrics.tokenize import (
    ascii_tokens,
    is_mostly_cjk,
    sentences_en,
    tokenize_en,
    tokenize_zh,
)
from tests.metrics.metrics_textgen import random_text


def test_tokenizer_matches_rouge_score() -> None:
    rng = random.Random(3)
    texts = [random_text(rng) for _ in range(200)] + ["İstanbul Kelvin K straße ÆON"]
    stemmer = DefaultTokenizer(use_stemmer=True)
    for text in texts:
        assert tokenize_en(text) == rs_tokenize.tokenize(text, None)
        assert tokenize_en(text, stem=True) == stemmer.tokenize(text)


def test_chinese_tokens_keep_characters_and_punctuation() -> None:
    tokens = tokenize_zh("我爱Python3编程，今天是2024年。")
    assert "编程" in tokens and "，" in tokens and "Python3" in tokens


def test_rouge_module_still_exports_the_tokenizers() -> None:
    assert rouge.tokenize_en is tokenize_en and rouge.tokenize_zh is tokenize_zh


def test_sentences_are_lines_and_bytes_are_rouge_score_tokens() -> None:
    assert ascii_tokens("Héllo, World-2!") == [b"h", b"llo", b"world", b"2"]
    assert sentences_en("The cats ran.\n\nDogs running", stem=True) == [
        [b"the", b"cat", b"ran"], [b"dog", b"run"]]


def test_mostly_cjk_decides_auto_tokenization() -> None:
    assert is_mostly_cjk("今天天气很好 ok")
    assert not is_mostly_cjk("The weather is nice 好")
    assert not is_mostly_cjk("12345 ...")
