"""Read and write rows of records: CSV, JSONL, or JSON (a list or `{"items": [...]}`).

One reader for every file the CLI and the library take: items to grade, pairs to score,
training data to calibrate on; one writer family for result records (`write_records` for
files; `jsonl_line` and `csv_row`, the line and cell formats the job export streams too).
`TEXT_FIELDS` is the one table of which fields hold the text scored and its reference.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalserve.errors import InvalidInputError

__all__ = [
    "TEXT_FIELDS",
    "TextFields",
    "csv_columns",
    "csv_row",
    "first_text",
    "iter_jsonl",
    "jsonl_line",
    "read_records",
    "write_records",
]


@dataclass(frozen=True)
class TextFields:
    """Field names, in order of preference, of the text scored and of its reference."""

    prediction: tuple[str, ...]
    reference: tuple[str, ...]


#: The column aliases of each surface that scores a text against a reference. They differ on
#: purpose, as documented (docs/metrics-api.md): in a file for `evalserve metrics`, `answer`
#: is the reference answer the prediction is compared with; in a job item, `answer` is the
#: judged answer (judge-1-5's alias of `predictions`) and the reference is named as such.
TEXT_FIELDS: dict[str, TextFields] = {
    "metrics_file": TextFields(
        prediction=("prediction", "predictions", "generated", "response"),
        reference=("reference", "references", "original", "answer"),
    ),
    "training_file": TextFields(  # `evalserve calibrate`: a human text of each original
        prediction=("human", "texts_human", "summary"),
        reference=("original", "texts_original", "source"),
    ),
    "job_item": TextFields(
        prediction=("predictions", "prediction", "response", "respuesta", "answer",
                    "generated", "output"),
        reference=("reference", "reference_answer", "references"),
    ),
}


def first_text(row: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """The first non-blank string among `row`'s fields `names` (column aliases)."""
    for name in names:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a file that cannot be opened into an error naming it."""
    try:
        yield
    except FileNotFoundError:
        raise InvalidInputError(f"file {str(path)!r} not found") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None


def _jsonl_values(lines: Iterable[str], path: Path,
                  on_invalid: Callable[[int, str], None] | None = None,
                  ) -> Iterator[tuple[int, Any]]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except ValueError as exc:
            if on_invalid is None:
                raise InvalidInputError(f"{path}:{n} is not valid JSON: {exc}") from None
            on_invalid(n, str(exc))


def iter_jsonl(path: str | Path, *, on_invalid: Callable[[int, str], None] | None = None,
               ) -> Iterator[tuple[int, Any]]:
    """`(line number, value)` of each non-blank line of a JSONL file, read lazily.

    A line that is not JSON raises `InvalidInputError` naming it, or, with `on_invalid`, is
    reported to `on_invalid(line_number, reason)` and skipped (for files that are best-effort,
    like `WARMUP_FILE`)."""
    path = Path(path)
    with _reading(path):
        fh = path.open(encoding="utf-8-sig")
    with fh:
        yield from _jsonl_values(fh, path, on_invalid)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Rows of `path` by its suffix: `.csv`, `.jsonl`/`.ndjson`, or `.json` (a list, or
    `{"items": [...]}`). Every row must be an object; errors name the file and line to fix."""
    path = Path(path)
    with _reading(path):
        text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, row in _jsonl_values(text.splitlines(), path):
            if not isinstance(row, dict):
                raise InvalidInputError(f"{path}:{n} must be a JSON object")
            rows.append(row)
        return rows
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return data
        raise InvalidInputError(f"{path} must hold a list of objects or {{\"items\": [...]}}")
    raise InvalidInputError(f"{path}: use a .csv, .jsonl or .json file")


def jsonl_line(record: Mapping[str, Any]) -> str:
    """One JSONL line (newline included), non-ASCII kept."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def csv_columns(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The union of the records' keys, in order of first appearance (the CSV header)."""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    return list(columns)


def csv_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a CSV row: nested values (objects, lists) JSON-encoded."""
    return {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
            for k, v in record.items()}


def write_records(records: list[dict[str, Any]], path: Path, fmt: str | None = None) -> None:
    """Write result records by the suffix of `path` (or `fmt`): `.jsonl` (default), `.json`,
    `.csv`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = fmt or path.suffix.lower().lstrip(".")
    if kind == "json":
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    elif kind == "csv":
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=csv_columns(records))
            writer.writeheader()
            for record in records:
                writer.writerow(csv_row(record))
    else:
        with path.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(jsonl_line(record))
