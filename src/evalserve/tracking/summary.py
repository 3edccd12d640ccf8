"""What one evaluation run reports: aggregate metrics and the per-row table (no MLflow here).

Records are the judge's output records (`Grade.record(rubric)`), keyed by the rubric's own
field names (`score_field`, `feedback_field`, `id_field`); items are the graded inputs, in the
same order. Both are plain dicts so the CLI, the job runner and tests can build them alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalserve.judge.report import HUMAN_KEY

if TYPE_CHECKING:
    from evalserve.judge.rubric import Rubric

__all__ = ["summarize", "results_table", "metric_name", "genai_metric_aggregates",
           "GENAI_METRIC", "GENAI_METRIC_VERSION", "GENAI_AGGREGATIONS"]

#: Record keys that are bookkeeping, never averaged as metrics. The human grade and the
#: pairwise / jury / samples keys are reported by the job report (`judge.report`) instead.
_RESERVED = {"status", "score_expected", "score_probs", "raw", "reason", "attempts", "index",
             "error", "item_id", "id", HUMAN_KEY, "first_position_wins",
             "judges_successful", "spread"}
#: What seed 004 names its judge metric (`make_genai_metric(name="llm_judge_accuracy")`);
#: `mlflow.evaluate` logs its aggregates as `<name>/<version>/<aggregation>`.
GENAI_METRIC = "llm_judge_accuracy"
GENAI_METRIC_VERSION = "v1"
GENAI_AGGREGATIONS = ("mean", "variance", "p90")


def metric_name(name: str) -> str:
    """An MLflow-safe metric key: letters, digits, `_ - . /` and spaces only."""
    safe = "".join(c if c.isalnum() or c in "_-./ " else "_" for c in str(name))
    return safe.strip() or "metric"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _extra_metric_values(record: Mapping[str, Any], skip: set[str]) -> dict[str, float]:
    """Numeric metrics carried by a record: a nested `metrics` dict and top-level numbers."""
    found: dict[str, float] = {}
    nested = record.get("metrics")
    if isinstance(nested, Mapping):
        for key, value in nested.items():
            if (num := _number(value)) is not None:
                found[str(key)] = num
            elif isinstance(value, Mapping):  # e.g. {"rouge_l": {"f1": 0.4, ...}}
                for sub, subval in value.items():
                    if (num := _number(subval)) is not None:
                        found[f"{key}_{sub}"] = num
    for key, value in record.items():
        if key in skip or key == "metrics":
            continue
        if (num := _number(value)) is not None:
            found[str(key)] = num
    return found


def summarize(records: Sequence[Mapping[str, Any]], rubric: Rubric) -> dict[str, float]:
    """Aggregate metrics of one run.

    `score_mean` (scored items only), `score_expected_mean` (where the engine gave logprobs),
    `score_count_<k>` for every allowed score, `scored_count`, `unscored_count`,
    `unscored_rate`, `items_total`, and `<name>_mean` for every other numeric metric found in
    the records (e.g. `rouge_l_mean`).
    """
    score_key = rubric.score_field
    skip = _RESERVED | {score_key, rubric.feedback_field}
    if rubric.id_field:
        skip.add(rubric.id_field)
    scores: list[float] = []
    expected: list[float] = []
    counts = {int(k): 0 for k in rubric.scale}
    extras: dict[str, list[float]] = {}
    unscored = 0
    for record in records:
        score = _number(record.get(score_key))
        if record.get("status", "scored") != "scored" or score is None:
            unscored += 1
        else:
            scores.append(score)
            if float(score).is_integer():
                counts[int(score)] = counts.get(int(score), 0) + 1
        if (exp := _number(record.get("score_expected"))) is not None:
            expected.append(exp)
        for name, value in _extra_metric_values(record, skip).items():
            extras.setdefault(name, []).append(value)

    total = len(records)
    metrics: dict[str, float] = {
        "items_total": float(total),
        "scored_count": float(len(scores)),
        "unscored_count": float(unscored),
        "unscored_rate": unscored / total if total else 0.0,
    }
    if (mean := _mean(scores)) is not None:
        metrics["score_mean"] = mean
    if (mean := _mean(expected)) is not None:
        metrics["score_expected_mean"] = mean
    for k in sorted(counts):
        metrics[f"score_count_{k}"] = float(counts[k])
    for name, values in sorted(extras.items()):
        metrics[metric_name(f"{name}_mean")] = sum(values) / len(values)
    return metrics


def genai_metric_aggregates(records: Sequence[Mapping[str, Any]], rubric: Rubric,
                            name: str = GENAI_METRIC) -> dict[str, float]:
    """`<name>/v1/mean`, `/variance` and `/p90` of the scored items' scores, computed as
    `mlflow.metrics.genai.make_genai_metric` aggregates them (`np.mean`, `np.var`,
    `np.percentile(scores, 90)` over the scores that exist), so a run logged by evalserve
    carries the metric names a `mlflow.evaluate` user looks for. Empty without scores."""
    import numpy as np

    scores = [s for r in records if r.get("status", "scored") == "scored"
              and (s := _number(r.get(rubric.score_field))) is not None]
    if not scores:
        return {}
    values = {"mean": np.mean(scores), "variance": np.var(scores),
              "p90": np.percentile(scores, 90)}
    prefix = f"{metric_name(name)}/{GENAI_METRIC_VERSION}"
    return {f"{prefix}/{agg}": float(values[agg]) for agg in GENAI_AGGREGATIONS}


def _cell(value: Any) -> Any:
    """Table cells must be JSON scalars for the MLflow UI's table view."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def results_table(records: Sequence[Mapping[str, Any]], rubric: Rubric,
                  items: Sequence[Mapping[str, Any]] | None = None) -> dict[str, list[Any]]:
    """The per-row table logged as `eval_results_table.json`, column-oriented.

    Columns: the item's id, every input field of the item (for seed 004's CSV these are
    `inputs` and `predictions`), then `score`, `score_expected`, `justification`, `status`
    and `reason` (why a row is unscored), and `human_score` when any record carries a human
    grade (None on rows without one). Rows follow `records`; `items[i]` is the input of
    `records[i]` when given.
    """
    if items is not None and len(items) != len(records):
        from evalserve.errors import InvalidInputError

        raise InvalidInputError(
            f"results table: {len(items)} items for {len(records)} records; pass the graded "
            "items in the order of their records"
        )
    id_col = rubric.id_field or "id"
    input_cols: list[str] = []
    for item in items or []:
        for key in item:
            if key not in input_cols and key != id_col:  # the id is the first column
                input_cols.append(key)
    human = any(record.get(HUMAN_KEY) is not None for record in records)
    if human:  # the item's own `human_score` field is this column, not an input column
        input_cols = [c for c in input_cols if c != HUMAN_KEY]
    columns = [id_col, *input_cols, "score", "score_expected", "justification", "status",
               "reason", *([HUMAN_KEY] if human else [])]
    table: dict[str, list[Any]] = {c: [] for c in columns}
    for i, record in enumerate(records):
        item = items[i] if items is not None else {}
        row_id = record.get(id_col, item.get(id_col, i))
        table[id_col].append(_cell(row_id))
        for col in input_cols:
            table[col].append(_cell(item.get(col)))
        table["score"].append(_cell(record.get(rubric.score_field)))
        table["score_expected"].append(_cell(record.get("score_expected")))
        table["justification"].append(_cell(record.get(rubric.feedback_field)))
        table["status"].append(_cell(record.get("status", "scored")))
        table["reason"].append(_cell(record.get("reason")))
        if HUMAN_KEY in table:
            table[HUMAN_KEY].append(_cell(record.get(HUMAN_KEY)))
    return table
