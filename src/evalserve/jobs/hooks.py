"""Per-item metrics inside evaluation jobs (`POST /evaluate` with `"metrics": [...]`).

`MetricsHook` is a job-runner item hook: for a job whose options name metrics (`rouge_l`,
`readability`, `relevance`, `factuality`), every item that carries a reference gets them,
stored and streamed with the judge's result::

    {"id_alumno": "a1", "nota": 4, "feedback": "...",
     "metrics": {"rouge_l": 0.42, "fkgl": 7.1, "smog": 8.0, "dale_chall": 9.3},
     "factuality_method": "llm_judge"}        # only when factuality was asked for

Which fields are compared:

- the **answer** (the text scored) is the item's first non-blank string among
  `ANSWER_FIELDS`: ``predictions``, ``prediction``, ``response``, ``respuesta``, ``answer``,
  ``generated``, ``output``;
- the **reference** is the first among `REFERENCE_FIELDS`: ``reference``,
  ``reference_answer``, ``references``.

Items without a reference, or without an answer, get no `metrics` (nothing is added). ROUGE-L
tokenizes each pair by its script (``lang="auto"``: jieba for Chinese, else English);
readability uses the rubric's `language` when it is a hyphenation language code (``ca``,
``es``, ``en``...), else English. Metric names are checked when the job is submitted
(`validate_job_metrics`); a hook failure is recorded in the item's `hook_errors` by the runner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from evalserve.metrics.names import parse_metric_names
from evalserve.metrics.service import MetricsService
from evalserve.records import TEXT_FIELDS, first_text

if TYPE_CHECKING:
    from evalserve.jobs.models import Job

__all__ = [
    "ANSWER_FIELDS",
    "REFERENCE_FIELDS",
    "MetricsHook",
    "validate_job_metrics",
]

#: A job item's answer and reference fields (`evalserve.records.TEXT_FIELDS["job_item"]`).
ANSWER_FIELDS: tuple[str, ...] = TEXT_FIELDS["job_item"].prediction
REFERENCE_FIELDS: tuple[str, ...] = TEXT_FIELDS["job_item"].reference


def validate_job_metrics(names: Iterable[str] | None) -> list[str]:
    """Canonical metric names for a job (`[]` for none); `InvalidInputError` (422) naming an
    unknown one and listing the known ones."""
    if not names:
        return []
    return parse_metric_names(names)



def _readability_lang(rubric: Mapping[str, Any] | None) -> str:
    lang = str((rubric or {}).get("language") or "en")
    try:
        import pyphen
    except ImportError:  # pragma: no cover - a dependency of evalserve
        return "en"
    if lang == "en" or pyphen.language_fallback(lang.replace("-", "_")) is None:
        return "en"
    return lang


class MetricsHook:
    """Item hook computing the job's metrics for one item (see the module doc)."""

    def __init__(self, service: MetricsService) -> None:
        self.service = service
        self.__name__ = "metrics_hook"  # how the runner names the hook in `hook_errors`

    async def __call__(self, job: Job, item: dict[str, Any],
                       record: dict[str, Any]) -> dict[str, Any]:
        if not job.options.metrics:
            return {}
        return await self.score(item, job.options.metrics, job.rubric)

    async def score(self, item: Mapping[str, Any], metrics: Iterable[str],
                    rubric: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The fields added to the record of `item` for `metrics` ({} when not applicable)."""
        answer = first_text(item, ANSWER_FIELDS)
        reference = first_text(item, REFERENCE_FIELDS)
        if answer is None or reference is None:
            return {}
        scores = await self.service.score_pairs(
            metrics, [answer], [reference], lang="auto",
            readability_lang=_readability_lang(rubric),
        )
        extra: dict[str, Any] = {"metrics": dict(scores.rows[0])}
        if scores.factuality_method:
            extra["factuality_method"] = scores.factuality_method
        return extra

