"""Read items to grade from a file: CSV, JSONL, or JSON (a list or `{"items": [...]}`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from evalserve.errors import InvalidInputError

__all__ = ["read_items", "write_records"]


def read_items(path: Path) -> list[dict[str, Any]]:
    """Items from `path` by its suffix (`.csv`, `.jsonl`/`.ndjson`, `.json`); errors name the
    line or index to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    if suffix in (".jsonl", ".ndjson"):
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{n} is not valid JSON: {exc}") from None
        return items
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            return data["items"]
        if isinstance(data, list):
            return data
        raise InvalidInputError(f"{path} must hold a list of items or {{\"items\": [...]}}")
    raise InvalidInputError(f"{path}: use a .csv, .jsonl or .json file of items")


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
