"""`evalserve agree RESULTS --human COLUMN`: how well a judge's scores agree with human grades.

RESULTS is any results file: `evalserve evaluate --out` / `GET /jobs/{id}/results` exports
(JSONL, JSON, CSV) or a CSV made elsewhere. The human grades are the column `--human` of
RESULTS, or of the graded items file `--items` (our result records do not repeat the items'
fields), matched to the results by id. The judge's columns are `--score` (repeatable; default
`score`, plus `score_expected` when present). Rows without both numbers are skipped and
counted. The numbers come from `evalserve.metrics.agreement.agreement`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from evalserve.errors import InvalidInputError
from evalserve.metrics.agreement import AgreementResult, agreement
from evalserve.records import read_records

__all__ = ["agree", "human_grades", "parse_rating"]

_MISSING = {"", "na", "n/a", "nan", "null", "none", "-"}
_DEFAULT_SCORES = ("score", "score_expected")


def parse_rating(value: Any, column: str, row: int) -> float | None:
    """A rating cell as a number: JSON numbers, numeric text (`3`, `3.5`, `3,5`); empty, `NA`,
    `null`, `-` and NaN are missing (None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInputError(f"row {row}: `{column}` must be a number, got {value!r}")
    if isinstance(value, int | float):
        return None if math.isnan(value) else float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _MISSING:
            return None
        try:
            number = float(text.replace(",", ".") if text.count(",") == 1 else text)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise InvalidInputError(f"row {row}: `{column}` must be a number (or empty when missing), "
                            f"got {value!r}")


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def _require(column: str, rows: Sequence[Mapping[str, Any]], path: Path, hint: str) -> None:
    if column not in _columns(rows):
        raise InvalidInputError(f"{path} has no column {column!r} (columns: "
                                f"{', '.join(_columns(rows)) or 'none'}); {hint}")


def _id_column(rows: list[dict[str, Any]], id_column: str | None, joining: bool) -> str | None:
    """`--id`, else `id`, else (to match items) the first column: our records lead with it."""
    if id_column is not None:
        return id_column
    columns = _columns(rows)
    if "id" in columns:
        return "id"
    return columns[0] if joining and columns else None


def human_grades(items_path: Path, human: str, id_column: str | None,
                 ) -> dict[str, float | None]:
    """The human grade of each item of the graded items file, by item id (its `id_column`
    field, else `id`, else its index, as a job names its items)."""
    items = read_records(items_path)
    _require(human, items, items_path, "name the human grade's column with --human")
    grades: dict[str, float | None] = {}
    for index, item in enumerate(items):
        key = next((item[c] for c in (id_column, "id") if c and item.get(c) is not None), index)
        grades[str(key)] = parse_rating(item.get(human), human, index + 1)
    return grades


def _inferred_scale(values: list[float | None]) -> list[int] | None:
    seen = [v for v in values if v is not None]
    if not seen:
        return None
    low, high = math.floor(min(seen)), math.ceil(max(seen))
    return list(range(low, high + 1)) if high > low else None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(value: float | None, ci: tuple[float, float] | None) -> str:
    return _fmt(value) + (f"  [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _p(value: float | None, p: float | None) -> str:
    return _fmt(value) + (f"  (p={p:.2g})" if p is not None else "")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _summary_table(results: dict[str, AgreementResult], human: str) -> Table:
    first = next(iter(results.values()))
    level = f"{first.confidence:.0%}"
    table = Table(title=f"Agreement with human grades ({human}), {first.items} rows")
    table.add_column("metric")
    for column in results:
        table.add_column(column, justify="right")
    rows: list[tuple[str, Any]] = [
        ("pairs (judge and human)", lambda r: str(r.n)),
        ("missing human grade", lambda r: str(r.missing_human)),
        ("missing judge score", lambda r: str(r.missing_judge)),
        (f"QWK  [{level} CI]", lambda r: _ci(r.qwk, r.qwk_ci)),
        ("Cohen's kappa", lambda r: _fmt(r.kappa)),
        ("Cohen's kappa, linear", lambda r: _fmt(r.kappa_linear)),
        ("Krippendorff's alpha (ordinal)", lambda r: _fmt(r.krippendorff_alpha)),
        (f"Spearman rho  [{level} CI]", lambda r: _ci(r.spearman, r.spearman_ci)),
        ("Spearman p-value", lambda r: "-" if r.spearman_p is None else f"{r.spearman_p:.2g}"),
        ("Pearson r", lambda r: _p(r.pearson, r.pearson_p)),
        ("exact agreement", lambda r: _pct(r.exact)),
        ("adjacent agreement (±1)", lambda r: _pct(r.adjacent)),
        ("MAE", lambda r: _fmt(r.mae)),
        ("bias (judge - human)", lambda r: _fmt(r.bias)),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in results.values()))
    return table


def _confusion_table(column: str, result: AgreementResult, human: str) -> Table:
    title = f"confusion matrix: {human} (rows) x {column} (columns)"
    table = Table(title=title, min_width=len(title) + 4)
    table.add_column(f"{human} \\ {column}")
    for label in result.scale:
        table.add_column(str(label), justify="right")
    for label, counts in zip(result.scale, result.confusion):
        table.add_row(str(label), *(str(c) if c else "." for c in counts))
    return table


def _disagreement_table(column: str, result: AgreementResult, human: str) -> Table:
    title = f"largest disagreements: {column} vs {human}"
    table = Table(title=title, min_width=len(title) + 4)
    for name in ("id", column, human, "difference"):
        table.add_column(name, justify="left" if name == "id" else "right")
    for d in result.disagreements:
        table.add_row(d.id, f"{d.judge:g}", f"{d.human:g}", f"{d.difference:+.2f}")
    return table


def agree(
    results_file: Annotated[Path, typer.Argument(
        help="Results: .jsonl, .json or .csv (ours or any file with the two columns)")],
    human: Annotated[str, typer.Option(help="Column of the human grade, e.g. human_score")],
    score: Annotated[list[str] | None, typer.Option(
        help="Judge's score column (repeatable; default score, plus score_expected when "
             "present)")] = None,
    items: Annotated[Path | None, typer.Option(
        help="Graded items file holding --human, matched to the results by id")] = None,
    id_column: Annotated[str | None, typer.Option(
        "--id", help="Id column (default id; with --items, the results' first column)")] = None,
    scale: Annotated[str | None, typer.Option(
        help="Grade scale, e.g. 1-5 (default: the integers from the lowest to the highest "
             "rating seen)")] = None,
    top: Annotated[int, typer.Option(help="How many largest disagreements to list")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON")] = False,
) -> None:
    """Compare the judge's scores with human grades: kappas, alpha, correlations, exact and
    adjacent agreement, MAE, the confusion matrix and the largest disagreements.

    Kappas, alpha, exact/adjacent agreement and the confusion matrix use the scores rounded
    to the scale; correlations, MAE and bias the raw values (e.g. score_expected 3.4)."""
    rows = read_records(results_file)
    if not rows:
        raise InvalidInputError(f"{results_file} has no rows")
    if top < 0:
        raise InvalidInputError(f"--top {top}: give 0 or more")
    columns = score or [c for c in _DEFAULT_SCORES if c in _columns(rows)]
    if not columns:
        raise InvalidInputError(f"{results_file} has no column score: name the judge's score "
                                f"column with --score (columns: {', '.join(_columns(rows))})")
    for column in columns:
        _require(column, rows, results_file, "name the judge's score column with --score")
    key = _id_column(rows, id_column, joining=items is not None)
    ids = [str(row.get(key)) if key and row.get(key) is not None else str(n)
           for n, row in enumerate(rows, 1)]
    if items is None:
        _require(human, rows, results_file, "name the human grade's column with --human, or "
                 "give the graded items file with --items")
        grades = [parse_rating(row.get(human), human, n) for n, row in enumerate(rows, 1)]
    else:
        by_id = human_grades(items, human, id_column)
        if not by_id.keys() & set(ids):
            raise InvalidInputError(f"no id of {results_file} (column {key!r}) is an item of "
                                    f"{items}: name the id column with --id")
        grades = [by_id.get(i) for i in ids]
    judged = {c: [parse_rating(row.get(c), c, n) for n, row in enumerate(rows, 1)]
              for c in columns}
    if scale is not None:
        from evalserve.tracking.options import parse_scale

        low, high = parse_scale(scale)
        points: list[int] | None = list(range(low, high + 1))
    else:
        points = _inferred_scale([*grades, *(v for vs in judged.values() for v in vs)])
    results = {c: agreement(values, grades, scale=points, ids=ids, top_disagreements=top)
               for c, values in judged.items()}
    if not any(r.n for r in results.values()):
        raise InvalidInputError(f"no row of {results_file} has both a human grade ({human}) "
                                f"and a judge score ({', '.join(columns)})")
    if as_json:
        typer.echo(json.dumps({"file": str(results_file), "human": human,
                               "results": {c: r.to_dict() for c, r in results.items()}},
                              ensure_ascii=False, allow_nan=False, indent=2))
        return
    console = Console(highlight=False)
    console.print(_summary_table(results, human))
    for column, result in results.items():
        if result.n:
            console.print(_confusion_table(column, result, human))
            if result.disagreements:
                console.print(_disagreement_table(column, result, human))
    console.print("Kappas, alpha, exact/adjacent agreement and the confusion matrix are on "
                  "scores rounded to the scale; correlations, MAE and bias on raw values.")
