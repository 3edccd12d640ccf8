"""A job's result records as JSON, JSONL or CSV text, produced page by page.

Every JSON text a client gets of a job (these exports and the SSE events) is strict JSON:
`json_text` writes a non-finite number (NaN, Infinity), which browsers' `JSON.parse` refuses,
as `null`. CSV cells a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first)
are written with a leading `'`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from evalserve.errors import InvalidInputError
from evalserve.jobs.models import Job
from evalserve.jobs.store import JobStore
from evalserve.records import csv_row

__all__ = ["FORMATS", "MEDIA_TYPES", "export_results", "iter_records", "json_text",
           "csv_safe"]

FORMATS = ("json", "jsonl", "csv")
MEDIA_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson",
               "csv": "text/csv; charset=utf-8"}
_PAGE = 1000


async def iter_records(store: JobStore, job_id: str) -> AsyncIterator[dict[str, Any]]:
    """Every stored record of the job, by item index."""
    after = -1
    while True:
        page = await store.records(job_id, after, _PAGE)
        if not page:
            return
        for _, record in page:
            yield record
        after = page[-1][0]


def _finite(value: Any) -> Any:
    """`value` with every non-finite float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """Strict JSON of `value` (non-ASCII kept): NaN and +-Infinity become `null`."""
    return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row whose string cells cannot run as spreadsheet formulas: a cell starting with
    `=`, `+`, `-`, `@`, tab or CR gets a leading `'` (OWASP's CSV-injection advice). Numbers
    stay numbers (a score of -1.5 is written `-1.5`)."""
    return {k: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            for k, v in row.items()}


async def export_results(store: JobStore, job: Job, fmt: str) -> AsyncIterator[str]:
    """The job's results as text chunks: `json` is `{"job_id", "status", "total", "completed",
    "results": [...]}`, `jsonl` one record per line, `csv` one row per record (nested values
    JSON-encoded, formula-like cells escaped)."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        async for record in iter_records(store, job.id):
            yield json_text(record) + "\n"
    elif fmt == "json":
        head = {"job_id": job.id, "status": job.status.value, "total": job.total,
                "completed": job.completed}
        yield json_text(head)[:-1] + ', "results": ['
        first = True
        async for record in iter_records(store, job.id):
            yield ("" if first else ",") + json_text(record)
            first = False
        yield "]}"
    else:
        columns: dict[str, None] = {}
        async for record in iter_records(store, job.id):
            columns.update(dict.fromkeys(record))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        async for record in iter_records(store, job.id):
            writer.writerow(csv_safe(csv_row(_finite(record))))
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
