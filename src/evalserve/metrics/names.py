"""Metric names: what `score_pairs`, the CLI's `--metric` and a job's `metrics` accept.

Flat per-item names of `MetricsService.score_pairs` (the CLI's `--out` rows and the job
records): ``rouge_l`` (ROUGE-L F1 of the prediction against the reference), ``fkgl``,
``smog``, ``dale_chall`` (readability of the prediction), ``relevance`` (BERTScore F1 of the
prediction against the reference) and ``factuality`` (prediction checked against the
reference).
"""

from __future__ import annotations

from collections.abc import Iterable

from evalserve.errors import InvalidInputError

__all__ = ["METRIC_ALIASES", "METRIC_NAMES", "PAIR_METRICS", "parse_metric_names", "split_lang"]

#: Metric names accepted by `score_pairs`, the CLI's `--metric` and a job's `metrics`.
METRIC_NAMES: tuple[str, ...] = ("rouge_l", "readability", "relevance", "factuality")
#: The metrics that compare a prediction with a reference (the others need the text only).
PAIR_METRICS: frozenset[str] = frozenset({"rouge_l", "relevance", "factuality"})
#: Other accepted spellings (lowercase) of the metric names.
METRIC_ALIASES: dict[str, str] = {
    "rouge": "rouge_l", "rougel": "rouge_l", "rouge-l": "rouge_l", "bertscore": "relevance",
    "alignscore": "factuality",
}


def parse_metric_names(names: str | Iterable[str]) -> list[str]:
    """Canonical metric names from a list or a comma-separated string (order kept, no repeats).

    Raises:
        InvalidInputError: an unknown name (the message lists the known ones) or none at all.
    """
    raw = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for name in raw:
        if not isinstance(name, str):
            raise InvalidInputError(f"metric names must be strings, got {name!r}")
        key = name.strip().lower()
        if not key:
            continue
        key = METRIC_ALIASES.get(key, key)
        if key not in METRIC_NAMES:
            raise InvalidInputError(
                f"unknown metric {name.strip()!r}: use any of {', '.join(METRIC_NAMES)}"
            )
        if key not in out:
            out.append(key)
    if not out:
        raise InvalidInputError(f"no metric named: use any of {', '.join(METRIC_NAMES)}")
    return out


def split_lang(lang: str) -> tuple[str, str]:
    """(ROUGE language, readability language) for one `lang` option.

    ``auto`` is ROUGE's per-pair detection and English readability; ``zh...`` is Chinese ROUGE
    (readability has no Chinese formula and says so); any other code (``en``, ``es``...) is
    English ROUGE tokenization and that language's readability syllables.
    """
    if not isinstance(lang, str) or not lang.strip():
        raise InvalidInputError("`lang` must be a language code such as 'en', 'es', 'zh' or 'auto'")
    code = lang.strip()
    if code == "auto":
        return "auto", "en"
    if code.lower().startswith("zh"):
        return "zh", code
    return "en", code
