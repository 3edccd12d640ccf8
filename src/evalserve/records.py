"""Read and write rows of records: CSV, JSONL, or JSON (a list or `{"items": [...]}`).

One reader for every file the CLI and the library take: items to grade, pairs to score,
training data to calibrate on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalserve.errors import InvalidInputError

__all__ = ["first_text", "read_records", "write_records"]


def first_text(row: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """The first non-blank string among `row`'s fields `names` (column aliases)."""
    for name in names:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Rows of `path` by its suffix: `.csv`, `.jsonl`/`.ndjson`, or `.json` (a list, or
    `{"items": [...]}`). Every row must be an object; errors name the file and line to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInputError(f"file {str(path)!r} not found") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{n} is not valid JSON: {exc}") from None
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


def write_records(records: list[dict[str, Any]], path: Path) -> None:
    """Write result records by the suffix of `path`: `.jsonl` (default), `.json`, `.csv`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    elif suffix == ".csv":
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(record))
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            for record in records:
                writer.writerow({k: json.dumps(v, ensure_ascii=False)
                                 if isinstance(v, dict | list) else v
                                 for k, v in record.items()})
    else:
        with path.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
