"""The report of a job: every summary of its result records, computed by one function.

`job_report(records, rubric, options)` is what every surface shows for a job (`GET /jobs/{id}`,
the SSE `complete` event, `GET /jobs/{id}/agreement`, the CLI summary, the MLflow run):

- `agreement` (when any record has a `human_score`): `{"score": ..., "score_expected": ...}`,
  each an `evalserve.metrics.agreement.AgreementResult.to_dict()` comparing the judge's score
  field (and, where records have it, `score_expected`) with the human grades, on the rubric's
  scale; its `disagreements` also carry the judge's feedback. A section the data cannot give
  (a rating outside the scale) is `{"error": message}` instead: the report never fails a job.
- `pairwise`, `jury`, `samples`: the summaries of `evalserve.judge.pairwise` and
  `evalserve.judge.jury`, when the records are of that kind.

Only the sections that apply are present; the report is strict JSON (no NaN or infinity).
`flat_metrics(report)` gives its numbers as `{"agreement/qwk": 0.81, ...}` for MLflow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from evalserve.errors import InvalidInputError
from evalserve.metrics.agreement import agreement

__all__ = ["HUMAN_KEY", "job_report", "agreement_report", "flat_metrics", "human_field"]

#: The record key of an item's human grade, whatever the item's field was called.
HUMAN_KEY = "human_score"

#: `flat_metrics` names of an agreement section's numbers (report key -> metric suffix).
_AGREEMENT_METRICS = {"n": "n", "qwk": "qwk", "kappa": "kappa", "kappa_linear": "kappa_linear",
                      "krippendorff_alpha": "alpha", "spearman": "spearman",
                      "pearson": "pearson", "exact": "exact", "adjacent": "adjacent",
                      "mae": "mae", "bias": "bias"}
_PAIRWISE_SCALE = (0.0, 0.5, 1.0)
_METRIC_CHARS = re.compile(r"[^\w\-. /]")


def _rubric_dict(rubric: Any) -> Mapping[str, Any]:
    if isinstance(rubric, Mapping):
        return rubric
    return rubric.model_dump(mode="json")  # a `Rubric`


def human_field(rubric: Any) -> str:
    """The item field holding a human grade under `rubric` (default `human_score`)."""
    return _rubric_dict(rubric).get("human_field") or HUMAN_KEY


def _with_feedback(section: dict[str, Any], feedback: Mapping[str, Any]) -> dict[str, Any]:
    for row in section["disagreements"]:
        row["feedback"] = feedback.get(row["id"])
    return section


def agreement_report(records: Sequence[Mapping[str, Any]], rubric: Any,
                     options: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The `agreement` section of `job_report` (None when no record has a human grade)."""
    if not any(r.get(HUMAN_KEY) is not None for r in records):
        return None
    spec = _rubric_dict(rubric)
    opts = options or {}
    score_field = spec.get("score_field") or "score"
    feedback_field = spec.get("feedback_field") or "feedback"
    id_field = spec.get("id_field") or "id"
    pairwise = spec.get("mode") == "pairwise" or any("verdict" in r for r in records)
    scale = _PAIRWISE_SCALE if pairwise else spec.get("scale") or None
    ids = [str(r.get(id_field, i)) for i, r in enumerate(records)]
    human = [r.get(HUMAN_KEY) for r in records]
    feedback = {ids[i]: r.get(feedback_field) for i, r in enumerate(records)}
    kwargs = {"scale": scale, "ids": ids,
              "n_resamples": int(opts.get("n_resamples", 1000)), "seed": int(opts.get("seed", 0))}
    out: dict[str, Any] = {}
    judged = {"score": score_field}
    if any(r.get("score_expected") is not None for r in records):
        judged["score_expected"] = "score_expected"
    for name, key in judged.items():
        try:
            result = agreement([r.get(key) for r in records], human, **kwargs)
        except InvalidInputError as exc:
            out[name] = {"error": exc.message}
            continue
        out[name] = _with_feedback(result.to_dict(), feedback)
    return out


def _summaries(spec: Mapping[str, Any], options: Mapping[str, Any]
               ) -> list[tuple[str, Callable[[Any], Any]]]:
    """The pairwise, jury and samples summaries (imported when a report is made)."""
    from evalserve.judge.jury import jury_summary, samples_summary
    from evalserve.judge.pairwise import pairwise_summary

    scale, id_field = spec.get("scale") or None, spec.get("id_field") or None
    seed = int(options.get("seed", 0))
    return [("pairwise", lambda records: pairwise_summary(records, seed=seed)),
            ("jury", lambda records: jury_summary(records, scale=scale, id_field=id_field)),
            ("samples", samples_summary)]


def job_report(records: Sequence[Mapping[str, Any]], rubric: Any,
               options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every summary of a job's result `records` graded under `rubric` (a rubric dict as a
    job stores it, or a `Rubric`); `options` are the job's (`JobOptions.to_dict()`), plus
    `n_resamples` and `seed` of the bootstrap intervals (default 1000 and 0). Module doc."""
    report: dict[str, Any] = {}
    section = agreement_report(records, rubric, options)
    if section is not None:
        report["agreement"] = section
    for name, summarise in _summaries(_rubric_dict(rubric), options or {}):
        try:
            value = summarise(records)
        except InvalidInputError as exc:
            value = {"error": exc.message}
        if value is not None:
            report[name] = value
    return _strict(report)


def _strict(value: Any) -> Any:
    """`value` as plain JSON types: tuples as lists, non-finite floats as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return _strict(value.item())
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _name(part: Any) -> str:
    """A metric name part MLflow accepts (letters, digits, `_ - . / space`)."""
    return _METRIC_CHARS.sub("_", str(part))


def _agreement_metrics(prefix: str, section: Mapping[str, Any], out: dict[str, float]) -> None:
    for key, suffix in _AGREEMENT_METRICS.items():
        number = _number(section.get(key))
        if number is not None:
            out[f"{prefix}/{suffix}"] = number
    for key in ("qwk_ci", "spearman_ci"):
        interval = section.get(key)
        if isinstance(interval, list | tuple) and len(interval) == 2:
            for bound, value in zip(("low", "high"), interval, strict=True):
                number = _number(value)
                if number is not None:
                    out[f"{prefix}/{key}_{bound}"] = number


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    """Numbers of nested dicts under `prefix/key/...`; an `agreement` dict by
    `_AGREEMENT_METRICS`; a list of dicts naming a `system` or `judge` by that name."""
    number = _number(value)
    if number is not None:
        out[prefix] = number
    elif isinstance(value, Mapping):
        if "qwk" in value and "confusion" in value:
            _agreement_metrics(prefix, value, out)
            return
        for key, inner in value.items():
            _flatten(f"{prefix}/{_name(key)}", inner, out)
    elif isinstance(value, list | tuple):
        for row in value:
            label = (row.get("system", row.get("judge")) if isinstance(row, Mapping) else None)
            if label is not None:
                _flatten(f"{prefix}/{_name(label)}", {k: v for k, v in row.items()
                                                      if k not in ("system", "judge")}, out)


def flat_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The report's numbers by MLflow metric name, finite numbers only:
    `agreement/qwk`, `agreement/kappa`, `agreement/kappa_linear`, `agreement/alpha`,
    `agreement/spearman`, `agreement/pearson`, `agreement/exact`, `agreement/adjacent`,
    `agreement/mae`, `agreement/bias`, `agreement/n`, `agreement/qwk_ci_low` ... (and
    `agreement_expected/...` for `score_expected`); `pairwise/...`, `jury/...`, `samples/...`
    for every number of those sections (`pairwise/win_rate/<system>`,
    `pairwise/leaderboard/<system>/rating`, `jury/per_judge/<name>/agreement/qwk`, ...)."""
    out: dict[str, float] = {}
    section = report.get("agreement") or {}
    for key, prefix in (("score", "agreement"), ("score_expected", "agreement_expected")):
        if isinstance(section.get(key), Mapping):
            _agreement_metrics(prefix, section[key], out)
    for name in ("pairwise", "jury", "samples"):
        if isinstance(report.get(name), Mapping):
            _flatten(name, report[name], out)
    return out
