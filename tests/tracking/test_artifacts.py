"""The job report's MLflow artifacts: the confusion-matrix heat map and `report.json`."""

from __future__ import annotations

from typing import Any

import numpy as np

from evalserve.tracking.artifacts import (
    COLORMAP,
    confusion_artifact,
    confusion_figure,
    log_report_artifacts,
)

CONFUSION = {"labels": [1, 2, 3], "rows": "human", "columns": "judge",
             "counts": [[4, 1, 0], [0, 3, 2], [0, 0, 7]]}


def test_heat_map_shows_counts_human_rows_and_judge_columns() -> None:
    figure = confusion_figure(CONFUSION, title="judge score vs human grade (n=17)")
    [axes, colorbar] = figure.axes
    assert axes.get_xlabel() == "judge" and axes.get_ylabel() == "human"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["1", "2", "3"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["1", "2", "3"]
    [image] = axes.get_images()
    assert image.get_cmap().name == COLORMAP == "viridis"
    assert np.array_equal(image.get_array(), np.asarray(CONFUSION["counts"]))
    assert [t.get_text() for t in axes.texts] == ["4", "1", "0", "0", "3", "2", "0", "0", "7"]
    assert colorbar.get_ylabel() == "items"
    assert type(figure.canvas).__name__ == "FigureCanvasAgg"


class _RecordingClient:
    def __init__(self) -> None:
        self.logged: dict[str, Any] = {}

    def log_dict(self, run_id: str, data: dict, path: str) -> None:
        self.logged[path] = data

    def log_figure(self, run_id: str, figure: Any, path: str) -> None:
        self.logged[path] = figure


def test_one_heat_map_per_compared_value_and_none_without_pairs() -> None:
    agreement = {"n": 17, "confusion": CONFUSION}
    report = {"agreement": {"score": agreement, "score_expected": agreement}}
    client = _RecordingClient()
    assert log_report_artifacts(client, "run", report) == [
        "report.json", "confusion_matrix.png", "confusion_matrix_score_expected.png"]
    assert client.logged["report.json"] == report
    assert confusion_artifact("score") == "confusion_matrix.png"

    empty = {"agreement": {"score": {"n": 0, "confusion": CONFUSION},
                           "score_expected": {"error": "the judge rating 9 is outside"}}}
    assert log_report_artifacts(_RecordingClient(), "run", empty) == ["report.json"]
    assert log_report_artifacts(_RecordingClient(), "run", {}) == ["report.json"]
