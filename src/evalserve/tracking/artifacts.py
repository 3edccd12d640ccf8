"""The job report's artifacts of an MLflow run: `report.json` and confusion-matrix heat maps.

`report.json` is the whole `judge.report.job_report` (what `GET /jobs/{id}` and the CLI
summary show). When the report has an agreement section, each compared judge value (`score`,
and `score_expected` where the engine gave logprobs) gets a heat map of its confusion matrix
against the human grades: counts in the cells, `human` rows, `judge` columns, the
colour-blind-safe viridis colormap. matplotlib (a dependency of MLflow) is imported here, when
a figure is drawn, and only its Agg canvas is used: no display, no pyplot global state, safe in
the server's worker threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["REPORT_ARTIFACT", "confusion_artifact", "confusion_figure", "log_report_artifacts"]

REPORT_ARTIFACT = "report.json"
#: Colour-blind-safe and perceptually uniform; readable in greyscale too.
COLORMAP = "viridis"


def confusion_artifact(value: str) -> str:
    """The artifact file of `value`'s heat map: `confusion_matrix.png` for the judge's score,
    `confusion_matrix_<value>.png` for the others (e.g. `score_expected`)."""
    return "confusion_matrix.png" if value == "score" else f"confusion_matrix_{value}.png"


def confusion_figure(confusion: Mapping[str, Any], *, title: str) -> Any:
    """A matplotlib `Figure` of an agreement's confusion matrix (`AgreementResult.to_dict()
    ["confusion"]`: `labels`, `counts[human][judge]`)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [str(label) for label in confusion["labels"]]
    counts = np.asarray(confusion["counts"], dtype=int).reshape(len(labels), len(labels))
    size = max(3.5, 0.55 * len(labels) + 2.5)
    figure = Figure(figsize=(size + 1.0, size), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap=COLORMAP, vmin=0, vmax=max(int(counts.max()), 1))
    axes.set_xticks(range(len(labels)), labels)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("judge")
    axes.set_ylabel("human")
    axes.set_title(title)
    if len(labels) <= 25:  # beyond that the numbers would not fit in the cells
        threshold = counts.max() / 2
        for row in range(len(labels)):
            for col in range(len(labels)):
                # viridis is dark at the bottom: light text on dark cells, dark on light
                colour = "white" if counts[row, col] <= threshold else "black"
                axes.text(col, row, str(counts[row, col]), ha="center", va="center",
                          color=colour, fontsize=9)
    figure.colorbar(image, ax=axes, label="items")
    return figure


def log_report_artifacts(client: Any, run_id: str, report: Mapping[str, Any]) -> list[str]:
    """Log `report.json` and, with an agreement section over at least one pair, one heat map
    per compared value; the artifact paths logged."""
    client.log_dict(run_id, dict(report), REPORT_ARTIFACT)
    logged = [REPORT_ARTIFACT]
    for value, result in (report.get("agreement") or {}).items():
        confusion = (result or {}).get("confusion") if isinstance(result, Mapping) else None
        if not confusion or not confusion.get("labels") or not result.get("n"):
            continue  # an error section, or no item with both grades: nothing to draw
        figure = confusion_figure(
            confusion, title=f"judge {value} vs human grade (n={result.get('n', '?')})")
        client.log_figure(run_id, figure, confusion_artifact(value))
        logged.append(confusion_artifact(value))
    return logged
