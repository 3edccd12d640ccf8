"""ROUGE-L for English and Chinese, exact and fast.

English (``lang="en"``) gives exactly the numbers of Google's ``rouge-score`` 0.1.2
(``RougeScorer(["rougeL"|"rougeLsum"], use_stemmer=stem).score(reference, prediction)``):
its tokenizer is reimplemented faithfully (``text.lower()``, every character outside
``[a-z0-9]`` becomes a separator, tokens longer than 3 characters go through NLTK's
``PorterStemmer`` when ``stem=True``, the very stemmer ``rouge-score`` uses; NLTK's stemmer
needs no downloaded data). The LCS itself runs in C++ (``rapidfuzz``'s ``LCSseq`` over the
token lists, batched with ``rapidfuzz.process.cpdist``), which is exact: rapidfuzz compares
tokens by their 64-bit Python hash, so two different tokens would have to collide in
SipHash to change a score. ``variant="rougeLsum"`` splits each text on newlines and scores
the summary-level union-LCS with the same tie-breaking as ``rouge-score``.

Chinese (``lang="zh"``, or ``lang="auto"`` for pairs whose letters are mostly CJK):
``rouge-score``'s tokenizer deletes every non-ASCII character, so feeding it jieba-joined
Chinese scores only the Latin letters and digits. The correct Chinese ROUGE-L is
``rouge-chinese`` 1.0.3's ``rouge-l`` over ``' '.join(jieba.cut(text))``: an LCS-F1 over
jieba tokens (case kept, punctuation tokens kept, whitespace dropped; its sentence split is
flattened back before the LCS, so it is one LCS over all tokens) with
``F = 2 * P * R / (P + R + 1e-8)``. ``recipe="standard"`` reproduces exactly that.
Where ``rouge-chinese`` raises on an empty text, this module scores 0.

``recipe="grader"`` reproduces the competition organisers' formula (seed 003) exactly::

    RougeScorer(["rougeL"]).score(" ".join(jieba.lcut(ref)), " ".join(jieba.lcut(pred)))

It is applied to every pair whatever ``lang`` says, and it IGNORES every Chinese
character and all punctuation: only runs of ASCII letters and digits (lowercased) left
after jieba's split are compared. A pure-Chinese answer therefore scores 0 against a
pure-Chinese reference under this recipe. Use it only to reproduce the grader's numbers.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Literal

from evalserve.errors import InvalidInputError
from evalserve.metrics._validation import check_pairs
from evalserve.metrics.tokenize import (
    ascii_tokens,
    is_mostly_cjk,
    jieba_cut,
    porter_stemmer,
    sentences_en,
    tokenize_en,
    tokenize_zh,
    zh_tokens_from_joined,
)

__all__ = [
    "RougeScore",
    "RougeResult",
    "rouge_l",
    "tokenize_en",
    "tokenize_zh",
]

logger = logging.getLogger(__name__)

Lang = Literal["en", "zh", "auto"]
Recipe = Literal["standard", "grader"]
Variant = Literal["rougeL", "rougeLsum"]



@dataclass(frozen=True)
class RougeScore:
    """Precision, recall and F1 of one pair (or their means)."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class RougeResult:
    """Per-pair scores, their mean, and the tokenization used for each pair."""

    scores: list[RougeScore]
    mean: RougeScore
    languages: list[str]


# ---------------------------------------------------------------------------- scoring


def _lcs_lengths(refs: list[list], preds: list[list]) -> list[int]:
    from rapidfuzz import process
    from rapidfuzz.distance import LCSseq

    if not refs:
        return []
    workers = -1 if len(refs) >= 4096 else 1
    out = process.cpdist(refs, preds, scorer=LCSseq.similarity, workers=workers)
    return out.tolist()


def _fmeasure(precision: float, recall: float) -> float:
    # rouge_score.scoring.fmeasure
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _lcs_scores(ref_tok: list[list], pred_tok: list[list], zh: list[bool]) -> list[RougeScore]:
    lcs = _lcs_lengths(ref_tok, pred_tok)
    scores = []
    for r, p, n_lcs, is_zh in zip(ref_tok, pred_tok, lcs, zh):
        if not r or not p:
            scores.append(RougeScore(0.0, 0.0, 0.0))
            continue
        prec = n_lcs / len(p)
        rec = n_lcs / len(r)
        if is_zh:
            # rouge-chinese's formula, epsilon included
            f1 = 2.0 * ((prec * rec) / (prec + rec + 1e-8))
        else:
            f1 = _fmeasure(prec, rec)
        scores.append(RougeScore(prec, rec, f1))
    return scores


def _lcs_indices(ref: list[bytes], can: list[bytes]) -> list[int]:
    """Indices into `ref` of the LCS that rouge-score's `_backtrack_norec` reads out."""
    import numpy as np

    ids: dict[bytes, int] = {}
    r = np.fromiter((ids.setdefault(t, len(ids)) for t in ref), dtype=np.int64, count=len(ref))
    c = np.fromiter((ids.get(t, -1) for t in can), dtype=np.int64, count=len(can))
    eq = r[:, None] == c[None, :]
    if not eq.any():
        return []
    rows, cols = eq.shape
    table = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    for i in range(1, rows + 1):
        prev = table[i - 1]
        # L[i][j] = max_{k<=j} (L[i-1][k-1] + 1 if match else L[i-1][k]): exact DP row.
        table[i, 1:] = np.maximum.accumulate(np.where(eq[i - 1], prev[:-1] + 1, prev[1:]))
    t = table.tolist()
    e = eq.tolist()
    i, j = rows, cols
    out: list[int] = []
    while i > 0 and j > 0:
        if e[i - 1][j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
        elif t[i][j - 1] > t[i - 1][j]:
            j -= 1
        else:
            i -= 1
    out.reverse()
    return out


def _summary_level(ref_sents: list[list[bytes]], can_sents: list[list[bytes]]) -> RougeScore:
    """rouge-score's `_summary_level_lcs` (union LCS, ROUGE paper section 3.2)."""
    if not ref_sents or not can_sents:
        return RougeScore(0.0, 0.0, 0.0)
    m = sum(map(len, ref_sents))
    n = sum(map(len, can_sents))
    if not n or not m:
        return RougeScore(0.0, 0.0, 0.0)
    cnt_r: Counter[bytes] = Counter()
    cnt_c: Counter[bytes] = Counter()
    for s in ref_sents:
        cnt_r.update(s)
    for s in can_sents:
        cnt_c.update(s)
    hits = 0
    for ref in ref_sents:
        union: set[int] = set()
        for can in can_sents:
            union.update(_lcs_indices(ref, can))
        for idx in sorted(union):
            tok = ref[idx]
            if cnt_c[tok] > 0 and cnt_r[tok] > 0:
                hits += 1
                cnt_c[tok] -= 1
                cnt_r[tok] -= 1
    recall = hits / m
    precision = hits / n
    return RougeScore(precision, recall, _fmeasure(precision, recall))


def _rust_scores(
    refs: list[str], preds: list[str], variant: Variant, stem: bool
) -> list[RougeScore] | None:
    """English pairs through `rouge-score-rs` when installed: an independent Rust port of
    rouge-score with bit-identical results, about 4x faster again than the rapidfuzz path
    (benchmarks/metrics_speed.py). Returns None when it is not installed."""
    try:
        from rouge_score_rs import RougeScorer
    except ImportError:
        return None
    batch = RougeScorer([variant], use_stemmer=stem).score_batch(refs, preds)
    return [RougeScore(s[variant].precision, s[variant].recall, s[variant].fmeasure)
            for s in batch]


def _mean(scores: Sequence[RougeScore]) -> RougeScore:
    return RougeScore(
        fmean(s.precision for s in scores),
        fmean(s.recall for s in scores),
        fmean(s.f1 for s in scores),
    )


def rouge_l(
    predictions: Sequence[str],
    references: Sequence[str],
    lang: Lang = "en",
    stem: bool = False,
    recipe: Recipe = "standard",
    variant: Variant = "rougeL",
) -> RougeResult:
    """ROUGE-L precision, recall and F1 of each prediction against its reference.

    Args:
        predictions: generated texts (the candidates).
        references: one reference per prediction.
        lang: ``"en"`` (rouge-score's ASCII tokenizer), ``"zh"`` (jieba tokens, scored like
            rouge-chinese) or ``"auto"`` (per pair: jieba when CJK characters make up at
            least half of the letters of reference + prediction, else English).
        stem: Porter-stem English tokens longer than 3 characters (rouge-score's
            ``use_stemmer``); ignored for Chinese tokens.
        recipe: ``"standard"`` (the correct metric for ``lang``) or ``"grader"`` (the seed
            003 organisers' formula: rouge-score over jieba-joined text, which ignores every
            non-ASCII character; see the module docstring).
        variant: ``"rougeL"`` or ``"rougeLsum"`` (newline-split summary-level union LCS,
            English only).

    Returns:
        ``RougeResult`` with one ``RougeScore`` per pair, the mean, and the tokenization
        used per pair (``"en"``, ``"zh"`` or ``"grader"``).

    Raises:
        InvalidInputError: empty or mismatched lists, or an unknown option.
    """
    preds, refs = check_pairs("predictions", predictions, "references", references)
    if lang not in ("en", "zh", "auto"):
        raise InvalidInputError(f"lang={lang!r} is not supported: use 'en', 'zh' or 'auto'")
    if recipe not in ("standard", "grader"):
        raise InvalidInputError(f"recipe={recipe!r} is not supported: use 'standard' or 'grader'")
    if variant not in ("rougeL", "rougeLsum"):
        raise InvalidInputError(
            f"variant={variant!r} is not supported: use 'rougeL' or 'rougeLsum'"
        )

    if recipe == "grader":
        if variant != "rougeL":
            raise InvalidInputError(
                "recipe='grader' is the organisers' rougeL formula: use variant='rougeL'"
            )
        cut = jieba_cut()
        cache: dict[str, list[bytes]] = {}

        def grader_tokens(text: str) -> list[bytes]:
            tokens = cache.get(text)
            if tokens is None:
                tokens = ascii_tokens(" ".join(cut(text)))
                if stem:
                    tokens = porter_stemmer()(tokens)
                cache[text] = tokens
            return tokens

        ref_tok = [grader_tokens(t) for t in refs]
        pred_tok = [grader_tokens(t) for t in preds]
        scores = _lcs_scores(ref_tok, pred_tok, [False] * len(refs))
        return RougeResult(scores, _mean(scores), ["grader"] * len(refs))

    if lang == "auto":
        is_zh = [is_mostly_cjk(r + "\n" + p) for r, p in zip(refs, preds)]
    else:
        is_zh = [lang == "zh"] * len(refs)

    if not any(is_zh):
        fast = _rust_scores(refs, preds, variant, stem)
        if fast is not None:
            return RougeResult(fast, _mean(fast), ["en"] * len(refs))

    if variant == "rougeLsum":
        if any(is_zh):
            raise InvalidInputError(
                "variant='rougeLsum' is defined on English tokens only: use variant='rougeL' "
                "for Chinese text (or lang='en')"
            )
        scores = [
            _summary_level(sentences_en(r, stem), sentences_en(p, stem))
            for r, p in zip(refs, preds)
        ]
        return RougeResult(scores, _mean(scores), ["en"] * len(refs))

    zh_cache: dict[str, list[str]] = {}
    cut = jieba_cut() if any(is_zh) else None
    stemmer = porter_stemmer() if stem else None

    def tokens_for(text: str, zh: bool) -> list:
        if zh:
            tokens = zh_cache.get(text)
            if tokens is None:
                assert cut is not None
                tokens = zh_tokens_from_joined(" ".join(cut(text)))
                zh_cache[text] = tokens
            return tokens
        tokens_en = ascii_tokens(text)
        return stemmer(tokens_en) if stemmer is not None else tokens_en

    ref_tok = [tokens_for(t, z) for t, z in zip(refs, is_zh)]
    pred_tok = [tokens_for(t, z) for t, z in zip(preds, is_zh)]
    scores = _lcs_scores(ref_tok, pred_tok, is_zh)
    return RougeResult(scores, _mean(scores), ["zh" if z else "en" for z in is_zh])
