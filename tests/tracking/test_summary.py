from __future__ import annotations

import pytest

from evalserve.errors import InvalidInputError
from evalserve.tracking.summary import metric_name, results_table, summarize


def test_summarize_scores_distribution_and_unscored(records, rubric) -> None:
    metrics = summarize(records, rubric)
    assert metrics["items_total"] == 4
    assert metrics["scored_count"] == 3
    assert metrics["unscored_count"] == 1
    assert metrics["unscored_rate"] == pytest.approx(0.25)
    assert metrics["score_mean"] == pytest.approx(11 / 3)
    assert metrics["score_expected_mean"] == pytest.approx((4.6 + 1.4 + 4.0) / 3)
    assert [metrics[f"score_count_{k}"] for k in range(1, 6)] == [1, 0, 0, 0, 2]
    assert metrics["rouge_l_mean"] == pytest.approx(0.25)
    # bookkeeping fields are never averaged as metrics
    assert not any(k.startswith(("id_", "score_probs")) for k in metrics)


def test_summarize_uses_the_rubric_output_names(rubric) -> None:
    teacher = rubric.model_copy(update={"score_field": "nota", "feedback_field": "feedback"})
    records = [{"id": "A1", "nota": 4, "feedback": "Bé", "status": "scored"},
               {"id": "A2", "nota": 2, "feedback": "Fluix", "status": "scored",
                "latency_ms": 10.0}]
    metrics = summarize(records, teacher)
    assert metrics["score_mean"] == 3
    assert metrics["score_count_4"] == metrics["score_count_2"] == 1
    assert metrics["latency_ms_mean"] == 10.0
    assert "nota_mean" not in metrics and "score_expected_mean" not in metrics


def test_summarize_empty_run(rubric) -> None:
    metrics = summarize([], rubric)
    assert metrics["items_total"] == 0 and metrics["unscored_rate"] == 0.0
    assert "score_mean" not in metrics


def test_results_table_rows_follow_records(records, items, rubric) -> None:
    table = results_table(records, rubric, items)
    assert list(table) == ["id", "inputs", "predictions", "score", "score_expected",
                           "justification", "status", "reason"]
    assert table["inputs"][1] == "2 + 2?" and table["predictions"][1] == "5"
    assert table["score"] == [5, 1, 5, None]
    assert table["status"][3] == "unscored"
    assert table["reason"][3] == "no score in the output"
    assert table["justification"][0] == "Correct."


def test_results_table_refuses_misaligned_items(records, items, rubric) -> None:
    with pytest.raises(InvalidInputError, match="4 records"):
        results_table(records, rubric, items[:2])


def test_metric_name_is_mlflow_safe() -> None:
    assert metric_name("bert:score@f1") == "bert_score_f1"


def test_results_table_gains_human_score_only_with_human_grades(graded_records, graded_items,
                                                                records, items,
                                                                rubric) -> None:
    """Issue 14 item 5: the per-row table carries each row's human grade (one column, even
    though the items name the same field), None where the item has none."""
    table = results_table(graded_records, rubric, graded_items)
    assert list(table).count("human_score") == 1 and list(table)[-1] == "human_score"
    assert table["human_score"] == [4.0, 1.0, 5.0, 3.0, None, 5.0]
    assert "human_score" not in results_table(records, rubric, items)


def test_genai_metric_aggregates_are_mlflows(graded_records, rubric) -> None:
    """Seed 004's names and MLflow's own aggregation functions
    (`mlflow.metrics.genai.genai_metric._get_aggregate_results`), over the scored items."""
    from mlflow.metrics.genai.genai_metric import _get_aggregate_results

    from evalserve.tracking.summary import genai_metric_aggregates

    got = genai_metric_aggregates(graded_records, rubric)
    scores = [5, 1, 5, 3, 2]
    theirs = _get_aggregate_results(scores, ["mean", "variance", "p90"])
    assert got == pytest.approx({f"llm_judge_accuracy/v1/{k}": v for k, v in theirs.items()})
    assert genai_metric_aggregates([graded_records[3]], rubric) == {}  # nothing scored


def test_summarize_does_not_average_human_grades(graded_records, rubric) -> None:
    """The human grade is reported by the job report's agreement, not as a judge metric."""
    assert "human_score_mean" not in summarize(graded_records, rubric)


def test_an_items_id_is_the_id_column_once_when_the_rubric_names_none() -> None:
    """A pairwise item's `id` (the rubric has no id field) is the table's id column, not an
    input column too (which made the id column twice as long as the others)."""
    from evalserve.judge.rubric import load_rubric

    rubric = load_rubric("pairwise-preference")
    items = [{"id": f"p{i}", "question": "Q?", "response_a": "a", "response_b": "b"}
             for i in range(3)]
    records = [{"id": f"p{i}", "score": 1.0, "feedback": "f", "status": "scored"}
               for i in range(3)]
    table = results_table(records, rubric, items)
    assert table["id"] == ["p0", "p1", "p2"]
    assert {len(column) for column in table.values()} == {3}
    assert list(table)[:4] == ["id", "question", "response_a", "response_b"]
