"""A job's results as JSON, JSONL and CSV chunks read page by page from a real SQLite store."""

from __future__ import annotations

import csv
import io
import json

import pytest

from evalserve.errors import InvalidInputError
from evalserve.jobs import export
from evalserve.jobs.export import FORMATS, MEDIA_TYPES, export_results, iter_records
from evalserve.jobs.models import Job, JobStatus, ResultRow
from evalserve.jobs.sqlite import SQLiteJobStore


async def _job(store: SQLiteJobStore, records: dict[int, dict], total: int | None = None,
               job_id: str = "j1") -> Job:
    """A stored job whose items `records` keys have results (stored out of order)."""
    total = total if total is not None else len(records)
    job = Job(id=job_id, status=JobStatus.RUNNING, rubric_name="r", rubric={}, total=total)
    await store.create_job(job, [(f"i{i}", {}) for i in range(total)])
    rows = [ResultRow(job_id, idx, f"i{idx}", "scored", 1, rec)
            for idx, rec in sorted(records.items(), reverse=True)]
    await store.commit(rows)
    return await store.get_job(job_id)


async def _text(store: SQLiteJobStore, job: Job, fmt: str) -> str:
    return "".join([chunk async for chunk in export_results(store, job, fmt)])


def test_formats_and_their_media_types() -> None:
    assert FORMATS == ("json", "jsonl", "csv")
    assert MEDIA_TYPES == {"json": "application/json", "jsonl": "application/x-ndjson",
                           "csv": "text/csv; charset=utf-8"}


async def test_iter_records_reads_every_page_by_item_order(
        store: SQLiteJobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "_PAGE", 2)
    job = await _job(store, {i: {"id": f"i{i}"} for i in (0, 1, 2, 4, 6)}, total=7)
    assert [r["id"] async for r in iter_records(store, job.id)] == ["i0", "i1", "i2", "i4", "i6"]


async def test_json_is_one_object_with_the_job_head_and_results(store: SQLiteJobStore) -> None:
    job = await _job(store, {0: {"id": "i0", "feedback": "Molt bé, Núria"},
                             1: {"id": "i1", "feedback": None}}, total=3)
    text = await _text(store, job, "json")
    assert json.loads(text) == {"job_id": "j1", "status": "running", "total": 3, "completed": 2,
                                "report": None,
                                "results": [{"id": "i0", "feedback": "Molt bé, Núria"},
                                            {"id": "i1", "feedback": None}]}
    assert "Núria" in text  # non-ASCII kept


async def test_json_of_a_job_without_results_has_an_empty_list(store: SQLiteJobStore) -> None:
    job = await _job(store, {}, total=2)
    assert json.loads(await _text(store, job, "json"))["results"] == []
    assert await _text(store, job, "jsonl") == ""


async def test_jsonl_is_one_record_per_line(store: SQLiteJobStore) -> None:
    job = await _job(store, {0: {"id": "i0", "nota": 3}, 1: {"id": "i1", "nota": "é"}})
    text = await _text(store, job, "jsonl")
    assert text == '{"id": "i0", "nota": 3}\n{"id": "i1", "nota": "é"}\n'


async def test_csv_header_is_the_union_of_keys_and_nested_values_are_json(
        store: SQLiteJobStore) -> None:
    job = await _job(store, {0: {"id": "i0", "nota": 3},
                             1: {"id": "i1", "hook_errors": ["m: boom"], "extra": {"a": 1}}})
    text = await _text(store, job, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == "id,nota,hook_errors,extra"
    assert rows == [{"id": "i0", "nota": "3", "hook_errors": "", "extra": ""},
                    {"id": "i1", "nota": "", "hook_errors": '["m: boom"]',
                     "extra": '{"a": 1}'}]


async def test_large_csv_comes_in_several_chunks(store: SQLiteJobStore) -> None:
    job = await _job(store, {i: {"id": f"i{i}", "text": "x" * 10_000} for i in range(20)})
    chunks = [chunk async for chunk in export_results(store, job, "csv")]
    assert len(chunks) > 1
    assert all(len(c) < 65536 + 20_000 for c in chunks)
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [r["id"] for r in rows] == [f"i{i}" for i in range(20)]


async def test_an_unknown_format_names_the_known_ones(store: SQLiteJobStore) -> None:
    job = await _job(store, {0: {"id": "i0"}})
    with pytest.raises(InvalidInputError, match="format 'xml' is not one of json, jsonl, csv"):
        await _text(store, job, "xml")


async def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(store: SQLiteJobStore) -> None:
    """Defect (issue 11, item 7): CSV export wrote cells starting with `=`, `+`, `-`, `@`,
    tab or CR unchanged: formula injection through a user-chosen id or feedback."""
    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    job = await _job(store, {i: {"id": v, "nota": -1.5, "n": -2, "ok": "a=b", "feedback": v}
                             for i, v in enumerate(evil)})
    rows = list(csv.DictReader(io.StringIO(await _text(store, job, "csv"))))
    assert [r["id"] for r in rows] == ["'" + v for v in evil]
    assert [r["feedback"] for r in rows] == ["'" + v for v in evil]
    assert {(r["nota"], r["n"], r["ok"]) for r in rows} == {("-1.5", "-2", "a=b")}


def test_csv_safe_escapes_strings_only() -> None:
    """Defect (issue 11, item 7): numbers keep their sign; only string cells are escaped."""
    assert export.csv_safe({"a": "-1", "b": -1, "c": -1.5, "d": None, "e": "x-1", "f": ""}) == {
        "a": "'-1", "b": -1, "c": -1.5, "d": None, "e": "x-1", "f": ""}


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
async def test_non_finite_numbers_are_exported_as_null(store: SQLiteJobStore, fmt: str) -> None:
    """Defect (issue 11, item 7): a NaN or Infinity in a stored record was written as the
    bare `NaN`/`Infinity` Python's json allows, which `JSON.parse` (the dashboard) refuses."""
    job = await _job(store, {0: {"id": "i0", "score_expected": float("nan"),
                                 "metrics": {"x": float("inf"), "y": [float("-inf"), 1.5]}}})
    text = await _text(store, job, fmt)
    assert "NaN" not in text and "Infinity" not in text
    if fmt == "csv":
        [row] = list(csv.DictReader(io.StringIO(text)))
        assert row["score_expected"] == "" and json.loads(row["metrics"]) == {
            "x": None, "y": [None, 1.5]}
        return
    strict = json.loads(text.splitlines()[0] if fmt == "jsonl" else text,
                        parse_constant=lambda c: pytest.fail(f"{c} in the export"))
    record = strict if fmt == "jsonl" else strict["results"][0]
    assert record == {"id": "i0", "score_expected": None, "metrics": {"x": None, "y": [None, 1.5]}}


def test_json_text_is_strict_json() -> None:
    assert export.json_text({"a": [float("nan"), {"b": float("inf")}], "c": "é", "d": 2.5}) == (
        '{"a": [null, {"b": null}], "c": "é", "d": 2.5}')


def test_csv_spreads_jury_sampling_and_pairwise_values_over_columns() -> None:
    """Issue 14: a CSV cell of JSON (`[{"judge": "a", ...}, ...]`) cannot be filtered or
    plotted in a spreadsheet; the jury's judges, the samples and the pairwise verdicts get
    a column each, one row per item."""
    record = {"id": "i0", "score": 4, "human_score": 5.0,
              "judges": [{"judge": "a", "model": "m1", "score": 4, "status": "scored",
                          "score_probs": {"4": 0.9}},
                         {"judge": "b", "model": "m2", "score": None, "status": "error"}],
              "samples": [4, None, 5], "verdicts": {"ab": "A", "ba": "B"},
              "verdict_probs": None, "score_probs": {"4": 1.0}}
    assert export.flat_record(record) == {
        "id": "i0", "score": 4, "human_score": 5.0,
        "judges.a.model": "m1", "judges.a.score": 4, "judges.a.status": "scored",
        "judges.a.score_probs": '{"4": 0.9}',
        "judges.b.model": "m2", "judges.b.score": None, "judges.b.status": "error",
        "samples.1": 4, "samples.2": None, "samples.3": 5,
        "verdicts.ab": "A", "verdicts.ba": "B", "verdict_probs": None,
        "score_probs": '{"4": 1.0}'}


def test_judges_without_unique_names_are_numbered() -> None:
    record = {"judges": [{"judge": "x", "score": 1}, {"judge": "x", "score": 2}]}
    assert export.flat_record(record) == {"judges.1.score": 1, "judges.2.score": 2}


async def test_csv_puts_the_human_grade_next_to_the_score_and_escapes_spread_cells(
        store: SQLiteJobStore) -> None:
    job = await _job(store, {0: {"id": "i0", "nota": 3, "feedback": "ok", "human_score": 4.0,
                                 "judges": [{"judge": "a", "feedback": "=cmd()"}]},
                             1: {"id": "i1", "nota": 2, "feedback": "ok"}})
    job.rubric = {"score_field": "nota"}
    text = await _text(store, job, "csv")
    assert text.splitlines()[0] == "id,nota,human_score,feedback,judges.a.feedback"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["judges.a.feedback"] == "'=cmd()"
    assert (rows[0]["human_score"], rows[1]["human_score"]) == ("4.0", "")


async def test_json_of_a_completed_job_carries_its_stored_report(
        store: SQLiteJobStore) -> None:
    from evalserve.jobs.store import StatusChange

    job = await _job(store, {0: {"id": "i0"}})
    report = {"agreement": {"score": {"qwk": 1.0}}}
    await store.commit(status=[StatusChange(job.id, JobStatus.COMPLETED, finished_at=1.0,
                                            report=report)])
    body = json.loads(await _text(store, await store.get_job(job.id), "json"))
    assert body["report"] == report and body["status"] == "completed"
