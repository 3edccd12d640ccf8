"""`evalserve metrics FILE`: score predictions against references, locally (no server).

FILE is CSV (with a header), JSONL or JSON (a list of objects). The prediction is read from
the first present column among `prediction`, `predictions`, `generated`, `response`; the
reference from `reference`, `references`, `original`, `answer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from evalserve.cli.options import EngineOpt, ModelOpt
from evalserve.errors import InvalidInputError
from evalserve.judge.factuality import local_service
from evalserve.metrics.names import PAIR_METRICS, parse_metric_names
from evalserve.records import TEXT_FIELDS, read_records, write_records
from evalserve.settings import load_settings

if TYPE_CHECKING:
    from evalserve.metrics.service import PairScores

__all__ = [
    "PREDICTION_COLUMNS",
    "REFERENCE_COLUMNS",
    "metrics",
    "read_scoring_file",
    "write_scores",
]

#: The file's columns (`evalserve.records.TEXT_FIELDS["metrics_file"]`).
PREDICTION_COLUMNS: tuple[str, ...] = TEXT_FIELDS["metrics_file"].prediction
REFERENCE_COLUMNS: tuple[str, ...] = TEXT_FIELDS["metrics_file"].reference

_LABELS = {
    "rouge_l": "ROUGE-L F1",
    "fkgl": "Flesch-Kincaid grade",
    "smog": "SMOG",
    "dale_chall": "Dale-Chall",
    "relevance": "Relevance (BERTScore F1)",
    "factuality": "Factuality",
}


def _column(rows: list[Mapping[str, Any]], names: tuple[str, ...]) -> str | None:
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    return next((n for n in names if n in keys), None)


def read_scoring_file(path: str | Path) -> tuple[list[str], list[str | None] | None, list[Any]]:
    """(predictions, references or None, ids) from a CSV/JSONL/JSON file (module doc)."""
    p = Path(path)
    rows = read_records(p)
    if not rows:
        raise InvalidInputError(f"{p} has no rows")
    pred_col = _column(rows, PREDICTION_COLUMNS)
    if pred_col is None:
        raise InvalidInputError(
            f"{p} has no prediction column: name it one of {', '.join(PREDICTION_COLUMNS)}"
        )
    ref_col = _column(rows, REFERENCE_COLUMNS)
    preds = []
    for i, row in enumerate(rows):
        value = row.get(pred_col)
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"row {i + 1}: `{pred_col}` must be text, got {value!r}")
        preds.append(value or "")
    refs = None
    if ref_col is not None:
        refs = [r.get(ref_col) if isinstance(r.get(ref_col), str) else None for r in rows]
    ids = [row.get("id", i) for i, row in enumerate(rows)]
    return preds, refs, ids


def write_scores(path: str | Path, ids: list[Any], scores: PairScores) -> Path:
    """Per-row scores as JSONL (or CSV when `path` ends in .csv): `id` then the metrics."""
    p = Path(path)
    records = [{"id": i, **row} for i, row in zip(ids, scores.rows)]
    write_records(records, p, fmt="csv" if p.suffix.lower() == ".csv" else "jsonl")
    return p


def _table(scores: PairScores, n: int) -> Table:
    table = Table(title=f"Means over {n} rows")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("rows scored", justify="right")
    for name, mean in scores.means.items():
        scored = sum(1 for r in scores.rows if r.get(name) is not None)
        label = _LABELS.get(name, name)
        if name == "factuality" and scores.factuality_method:
            label += f" ({scores.factuality_method})"
        table.add_row(label, f"{mean:.4f}", str(scored))
    return table


def metrics(
    file: Annotated[Path, typer.Argument(help="CSV / JSONL / JSON with prediction and "
                                              "reference columns")],
    metric: Annotated[str, typer.Option(
        "--metric", "-m",
        help="Comma-separated: rouge_l, readability, relevance, factuality")] = (
        "rouge_l,readability,relevance"),
    lang: Annotated[str, typer.Option(
        help="en | zh | auto | es | ...: ROUGE tokenization (zh, auto: per pair, else English) "
             "and readability language (auto: en)")] = "en",
    out: Annotated[Path | None, typer.Option(
        help="Write per-row scores here (.jsonl, or .csv)")] = None,
    engine: EngineOpt = None,
    model: ModelOpt = None,
) -> None:
    """Score each prediction against its reference and print the means.

    Factuality is AlignScore when ALIGNSCORE_CKPT is set, else an LLM judge on the
    configured model (loaded for the purpose).
    """
    names = parse_metric_names(metric)
    settings = load_settings(engine=engine, model_name=model)
    preds, refs, ids = read_scoring_file(file)
    if refs is None and PAIR_METRICS.intersection(names):
        raise InvalidInputError(
            f"{file} has no reference column ({', '.join(REFERENCE_COLUMNS)}), needed by "
            + ", ".join(n for n in names if n in PAIR_METRICS)
        )
    console = Console(highlight=False)

    async def run() -> PairScores:
        async with local_service(settings) as service:
            return await service.score_pairs(names, preds, refs, lang=lang)

    with console.status(f"scoring {len(preds)} rows: {', '.join(names)}..."):
        scores = asyncio.run(run())
    console.print(_table(scores, len(preds)))
    if out is not None:
        written = write_scores(out, ids, scores)
        console.print(f"per-row scores written to {written}")
