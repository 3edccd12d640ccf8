"""A job's result records as JSON, JSONL or CSV text, produced page by page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from evalserve.errors import InvalidInputError
from evalserve.jobs.models import Job
from evalserve.jobs.store import JobStore
from evalserve.records import csv_row, jsonl_line

__all__ = ["FORMATS", "MEDIA_TYPES", "export_results", "iter_records"]

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


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def export_results(store: JobStore, job: Job, fmt: str) -> AsyncIterator[str]:
    """The job's results as text chunks: `json` is `{"job_id", "status", "total", "completed",
    "results": [...]}`, `jsonl` one record per line, `csv` one row per record (nested values
    JSON-encoded)."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        async for record in iter_records(store, job.id):
            yield jsonl_line(record)
    elif fmt == "json":
        head = {"job_id": job.id, "status": job.status.value, "total": job.total,
                "completed": job.completed}
        yield _dumps(head)[:-1] + ', "results": ['
        first = True
        async for record in iter_records(store, job.id):
            yield ("" if first else ",") + _dumps(record)
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
            writer.writerow(csv_row(record))
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
