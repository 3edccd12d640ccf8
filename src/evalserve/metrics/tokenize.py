"""The tokenizers of ROUGE-L: rouge-score's English runs and rouge-chinese's jieba tokens.

`tokenize_en` is ``rouge_score.tokenize.tokenize`` (lowercase ``[a-z0-9]+`` runs, Porter
stemming of tokens longer than 3 with ``stem=True``); `tokenize_zh` the tokens
``rouge-chinese`` scores for ``' '.join(jieba.cut(text))``. The byte-level helpers are what
`evalserve.metrics.rouge` feeds to the LCS. jieba and NLTK are imported on first use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

__all__ = [
    "ascii_tokens",
    "is_mostly_cjk",
    "jieba_cut",
    "sentences_en",
    "porter_stemmer",
    "tokenize_en",
    "tokenize_zh",
    "zh_tokens_from_joined",
]

# Every byte outside [a-z0-9] becomes a space: after str.lower(), this is rouge-score's
# `re.sub(r"[^a-z0-9]+", " ", text)` (non-ASCII characters encode to bytes >= 0x80).
_ASCII_TABLE = bytes(c if (48 <= c <= 57 or 97 <= c <= 122) else 32 for c in range(256))
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")
_CJK = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
    "\U00020000-\U0002fa1f]"
)
_LETTER = re.compile(r"[^\W_]")
# rouge-chinese's `Rouge.cut_sent`.
_CUT_SENT = (
    (re.compile("([。！？\\?])([^”’])"), r"\1\n\2"),
    (re.compile("(\\.{6})([^”’])"), r"\1\n\2"),
    (re.compile("(\\…{2})([^”’])"), r"\1\n\2"),
    (re.compile("([。！？\\?][”’])([^，。！？\\?])"), r"\1\n\2"),
)


class _Stemmer:
    """rouge-score's stemming rule (Porter on tokens longer than 3), cached per token."""

    def __init__(self) -> None:
        from nltk.stem import porter  # pure code, no NLTK data download

        self._porter = porter.PorterStemmer()
        self._cache: dict[bytes, bytes | None] = {}

    def __call__(self, tokens: list[bytes]) -> list[bytes]:
        cache = self._cache
        out = []
        for tok in tokens:
            if len(tok) <= 3:
                out.append(tok)
                continue
            stemmed = cache.get(tok, b"")
            if stemmed == b"":
                word = self._porter.stem(tok.decode("ascii"))
                stemmed = word.encode("ascii") if _VALID_TOKEN.match(word) else None
                cache[tok] = stemmed
            if stemmed is not None:
                out.append(stemmed)
        return out


_STEMMER: _Stemmer | None = None


def porter_stemmer() -> _Stemmer:
    """The process-wide cached stemmer (NLTK is imported on first use)."""
    global _STEMMER
    if _STEMMER is None:
        _STEMMER = _Stemmer()
    return _STEMMER


def ascii_tokens(text: str) -> list[bytes]:
    """rouge-score's tokens of `text` as bytes (lowercase ``[a-z0-9]+`` runs)."""
    return text.lower().encode("utf-8", "surrogatepass").translate(_ASCII_TABLE).split()


def tokenize_en(text: str, stem: bool = False) -> list[str]:
    """Tokenize like ``rouge_score.tokenize.tokenize`` (lowercase ``[a-z0-9]+`` runs)."""
    tokens = ascii_tokens(text)
    if stem:
        tokens = porter_stemmer()(tokens)
    return [t.decode("ascii") for t in tokens]


def jieba_cut() -> Callable[[str], list[str]]:
    """`jieba.lcut`, imported on first use (`ConfigurationError` with the install hint)."""
    try:
        import jieba
    except ImportError as exc:  # pragma: no cover - jieba is a runtime dependency
        from evalserve.errors import ConfigurationError

        raise ConfigurationError(
            "Chinese ROUGE-L needs jieba: pip install jieba"
        ) from exc
    jieba.setLogLevel(logging.WARNING)
    return jieba.lcut


def _cut_sent(para: str) -> list[str]:
    for pattern, repl in _CUT_SENT:
        para = pattern.sub(repl, para)
    return para.rstrip().split("\n")


def zh_tokens_from_joined(joined: str) -> list[str]:
    """rouge-chinese's tokens of an already space-joined jieba cut."""
    tokens: list[str] = []
    for sent in _cut_sent(joined):
        if len(sent) > 0:
            # rouge-chinese: " ".join(s.split()) then .split(" "): a blank line is one "" token
            tokens.extend(sent.split() or [""])
    return tokens


def tokenize_zh(text: str) -> list[str]:
    """Tokens ``rouge-chinese`` scores for ``' '.join(jieba.cut(text))``."""
    return zh_tokens_from_joined(" ".join(jieba_cut()(text)))


def sentences_en(text: str, stem: bool) -> list[list[bytes]]:
    """Per-line English tokens (rougeLsum's sentences), stemmed when `stem`."""
    sents = [s for s in text.split("\n") if len(s)]
    out = [ascii_tokens(s) for s in sents]
    if stem:
        stemmer = porter_stemmer()
        out = [stemmer(s) for s in out]
    return out


def is_mostly_cjk(text: str) -> bool:
    """True when at least half of the letters of `text` are CJK (`lang="auto"`)."""
    cjk = len(_CJK.findall(text))
    letters = len(_LETTER.findall(text))
    return cjk > 0 and cjk * 2 >= letters
