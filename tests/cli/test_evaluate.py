"""`evalserve evaluate`: in-process on the real bundled model, and `--server` on a live server."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalserve.cli.main import app
from evalserve.errors import InvalidInputError
from evalserve.records import read_records as read_items
from tests.conftest import MODEL_CACHE
from tests.e2e.conftest import live_server  # noqa: F401 - the real server fixture

ITEMS = [
    {"id_alumno": f"S{i}", "curso": "2n ESO", "consigna": "Què és la fotosíntesi?",
     "respuesta": f"Les plantes fan menjar amb la llum del sol ({i})."} for i in range(3)
]


def test_reads_jsonl_csv_and_json(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(i) for i in ITEMS) + "\n\n", encoding="utf-8")
    as_csv = tmp_path / "a.csv"
    with as_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ITEMS[0]))
        writer.writeheader()
        writer.writerows(ITEMS)
    wrapped = tmp_path / "a.json"
    wrapped.write_text(json.dumps({"items": ITEMS}), encoding="utf-8")
    assert read_items(jsonl) == read_items(as_csv) == read_items(wrapped) == ITEMS
    broken = tmp_path / "b.jsonl"
    broken.write_text(json.dumps(ITEMS[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"b.jsonl:2 is not valid JSON"):
        read_items(broken)
    (tmp_path / "a.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"use a \.csv, \.jsonl or \.json file"):
        read_items(tmp_path / "a.txt")


@pytest.mark.e2e
def test_evaluate_in_process_writes_results_and_summary(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_CACHE_DIR", str(MODEL_CACHE))
    source = tmp_path / "items.jsonl"
    source.write_text("\n".join(json.dumps(i) for i in ITEMS), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(app, ["evaluate", str(source), "--out", str(out),
                                      "--max-new-tokens", "24"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id_alumno"] for r in records] == ["S0", "S1", "S2"]
    assert all(isinstance(r["nota"], int) and 0 <= r["nota"] <= 5 for r in records)
    assert "distribution" in result.output and "┃ nota ┃ items ┃" in result.output
    assert "complete: 3 results, 3 scored, 0 unscored" in result.output
    assert f"wrote 3 records to {out}" in result.output.replace("\n", "")


@pytest.mark.e2e
def test_evaluate_against_a_server(tmp_path: Path, live_server) -> None:  # noqa: ANN001, F811
    source = tmp_path / "items.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ITEMS[0]))
        writer.writeheader()
        writer.writerows(ITEMS[:2])
    out = tmp_path / "results.csv"
    result = CliRunner().invoke(app, ["evaluate", str(source), "--server", live_server.url,
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id_alumno"] for r in rows] == ["S0", "S1"]
    assert all(r["status"] == "scored" and r["nota"] in "012345" for r in rows)
    assert "complete: 2 results, 2 scored" in result.output
    mean = sum(int(r["nota"]) for r in rows) / 2
    assert f"mean nota {mean:.3f}" in result.output


@pytest.mark.e2e
def test_evaluate_reports_bad_items_from_the_server(tmp_path: Path, live_server) -> None:  # noqa: ANN001, F811
    source = tmp_path / "bad.json"
    source.write_text(json.dumps([{"id_alumno": "X", "curso": "1r ESO"}]), encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(source), "--server", live_server.url])
    assert isinstance(result.exception, InvalidInputError)
    assert "items[0] lacks the field(s) ['consigna', 'respuesta']" in result.exception.message


def test_in_process_engine_is_started_and_closed(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from evalserve.engines import registry
    from tests.fakes import ScriptedEngine
    from tests.jobs.helpers import answer

    fake = ScriptedEngine(lambda request: answer(3))
    monkeypatch.setattr(registry, "create_engine", lambda settings: fake)
    source = tmp_path / "items.jsonl"
    source.write_text("\n".join(json.dumps(i) for i in ITEMS), encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(source)])
    assert result.exit_code == 0, result.output
    assert "complete: 3 results, 3 scored, 0 unscored, mean nota 3.000" in result.output
    assert fake.started and fake.closed and len(fake.requests) == 3
