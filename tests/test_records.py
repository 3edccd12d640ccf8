"""Records: the one column-alias table and the one writer family."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evalserve.errors import InvalidInputError
from evalserve.records import (
    TEXT_FIELDS,
    csv_columns,
    csv_row,
    first_text,
    iter_jsonl,
    jsonl_line,
    read_records,
    write_records,
)

RECORDS = [{"id": "a", "score": 4, "metrics": {"rouge_l": 0.5}},
           {"id": "b", "score": None, "reason": "cut", "tags": ["x", "ñ"]}]


def test_answer_is_a_reference_in_metric_files_and_the_judged_text_in_job_items() -> None:
    row = {"prediction": " ", "generated": "G", "answer": "A", "reference": ""}
    file_fields, item_fields = TEXT_FIELDS["metrics_file"], TEXT_FIELDS["job_item"]
    assert first_text(row, file_fields.prediction) == "G"
    assert first_text(row, file_fields.reference) == "A"
    assert first_text(row, item_fields.prediction) == "A"
    assert first_text(row, item_fields.reference) is None
    assert set(TEXT_FIELDS) == {"metrics_file", "training_file", "job_item"}


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_written_records_read_back(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "out" / f"results{suffix}"
    write_records(RECORDS, path)
    back = read_records(path)
    if suffix == ".csv":
        assert list(back[0]) == ["id", "score", "metrics", "reason", "tags"]
        assert json.loads(back[0]["metrics"]) == {"rouge_l": 0.5}
        assert back[1]["score"] == "" and json.loads(back[1]["tags"]) == ["x", "ñ"]
    else:
        assert back == RECORDS
    if suffix == ".json":
        assert path.read_text(encoding="utf-8").startswith("[\n")


def test_fmt_overrides_the_suffix_and_helpers_match_the_files(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    write_records(RECORDS, path, fmt="jsonl")
    assert path.read_text(encoding="utf-8") == "".join(jsonl_line(r) for r in RECORDS)
    assert "ñ" in jsonl_line(RECORDS[1])
    assert csv_columns(RECORDS) == ["id", "score", "metrics", "reason", "tags"]
    assert csv_row(RECORDS[0]) == {"id": "a", "score": 4, "metrics": '{"rouge_l": 0.5}'}
    csv_path = tmp_path / "x.txt"
    write_records(RECORDS, csv_path, fmt="csv")
    rows = list(csv.DictReader(csv_path.read_text(encoding="utf-8").splitlines()))
    assert rows[0]["id"] == "a"


def test_iter_jsonl_numbers_lines_and_skips_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"prompt": "a"}\n\n"b"\nnot json\n[1]\n', encoding="utf-8")
    skipped: list[tuple[int, str]] = []
    values = list(iter_jsonl(path, on_invalid=lambda n, why: skipped.append((n, why))))
    assert values == [(1, {"prompt": "a"}), (3, "b"), (5, [1])]
    assert [n for n, _ in skipped] == [4]
    with pytest.raises(InvalidInputError, match=r"w\.jsonl:4 is not valid JSON"):
        list(iter_jsonl(path))
    with pytest.raises(InvalidInputError, match="not found"):
        list(iter_jsonl(tmp_path / "missing.jsonl"))


def test_calibration_reads_its_columns_from_the_one_table() -> None:
    from evalserve.metrics.calibration import HUMAN_COLUMNS, ORIGINAL_COLUMNS

    fields = TEXT_FIELDS["training_file"]
    assert (ORIGINAL_COLUMNS, HUMAN_COLUMNS) == (fields.reference, fields.prediction)
    row = {"source": "The original.", "summary": "The human text."}
    assert (first_text(row, fields.reference), first_text(row, fields.prediction)) == (
        "The original.", "The human text.")
