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
from evalserve.jobs.models import Job, JobStatus
from evalserve.jobs.store import JobStore
from evalserve.records import csv_row

__all__ = ["FORMATS", "MEDIA_TYPES", "export_results", "iter_records", "json_text",
           "csv_safe", "flat_record"]

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


#: Nested record keys a CSV spreads over columns of their own (jury, sampling and pairwise
#: results); other nested values are JSON-encoded in one cell.
_SPREAD = ("verdicts", "verdict_probs", "judges", "samples")


def flat_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record as CSV cells, one row per item: `verdicts` and `verdict_probs` as
    `verdicts.ab`, `verdict_probs.A` ...; `samples` as `samples.1` ... `samples.k`; `judges`
    as `judges.<name>.<key>` (`judges.<name>.score`, `.status`, `.feedback` ..., by the judge's
    name, else its position from 1; a sampling judge's `judges.<name>.samples.1` ...); other
    nested values JSON-encoded."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key not in _SPREAD or not isinstance(value, dict | list):
            out[key] = value
        elif isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        elif key == "judges":
            names = [j.get("judge") if isinstance(j, dict) else None for j in value]
            unique = all(n is not None for n in names) and len(set(names)) == len(names)
            for i, judge in enumerate(value):
                name = names[i] if unique else i + 1
                if isinstance(judge, dict):
                    for k, v in judge.items():
                        if k == "samples" and isinstance(v, list):  # a jury that samples
                            out.update({f"{key}.{name}.samples.{i + 1}": s
                                        for i, s in enumerate(v)})
                        elif k != "judge":
                            out[f"{key}.{name}.{k}"] = v
                else:
                    out[f"{key}.{name}"] = judge
        else:
            out.update({f"{key}.{i + 1}": v for i, v in enumerate(value)})
    return csv_row(out)


def _columns(columns: dict[str, None], score_field: str) -> list[str]:
    """The CSV header: the union of the records' keys, `human_score` next to the score."""
    names = list(columns)
    if "human_score" in columns and score_field in columns:
        names.remove("human_score")
        names.insert(names.index(score_field) + 1, "human_score")
    return names


async def export_results(store: JobStore, job: Job, fmt: str) -> AsyncIterator[str]:
    """The job's results as text chunks: `json` is `{"job_id", "status", "total", "completed",
    "report", "results": [...]}` (`report`: the stored report of a completed job, else null),
    `jsonl` one record per line, `csv` one row per record (`flat_record`: nested jury, sampling
    and pairwise values spread over columns, others JSON-encoded; formula-like cells
    escaped)."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        async for record in iter_records(store, job.id):
            yield json_text(record) + "\n"
    elif fmt == "json":
        report = await store.get_report(job.id) if job.status is JobStatus.COMPLETED else None
        head = {"job_id": job.id, "status": job.status.value, "total": job.total,
                "completed": job.completed, "report": report}
        yield json_text(head)[:-1] + ', "results": ['
        first = True
        async for record in iter_records(store, job.id):
            yield ("" if first else ",") + json_text(record)
            first = False
        yield "]}"
    else:
        columns: dict[str, None] = {}
        async for record in iter_records(store, job.id):
            columns.update(dict.fromkeys(flat_record(record)))
        buf = io.StringIO()
        score_field = job.rubric.get("score_field") or "score"
        writer = csv.DictWriter(buf, fieldnames=_columns(columns, score_field),
                                extrasaction="ignore")
        writer.writeheader()
        async for record in iter_records(store, job.id):
            writer.writerow(csv_safe(flat_record(_finite(record))))
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
