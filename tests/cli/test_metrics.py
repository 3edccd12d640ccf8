"""`evalserve metrics` on small files (scripted judge engine)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalserve.cli import main as cli_main
from evalserve.cli.metrics import read_scoring_file
from evalserve.metrics import readability, relevance, rouge_l
from tests.cli.helpers import run_main, write_jsonl
from tests.fakes import ScriptedEngine

ROWS = [
    {"id": "a", "generated": "The patient took aspirin. The fever went down.",
     "original": "The patient took 20 mg of aspirin daily for two weeks and the fever went down."},
    {"id": "b", "generated": "Exercise lowers blood pressure.",
     "original": "Regular exercise lowers blood pressure in adults with mild hypertension."},
    {"id": "c", "generated": "Smoking is bad for the lungs.", "original": ""},
]


def test_metrics_writes_per_row_scores(tmp_path: Path, judge: ScriptedEngine) -> None:
    data = write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    out = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(cli_main.app, [
        "metrics", str(data), "--metric", "rouge_l,readability,relevance,factuality",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ROUGE-L F1" in result.output and "Factuality (llm_judge)" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["a", "b", "c"]
    preds = [r["generated"] for r in ROWS]
    expected_rouge = rouge_l(preds[:2], [r["original"] for r in ROWS[:2]]).scores
    assert [r["rouge_l"] for r in records[:2]] == pytest.approx([s.f1 for s in expected_rouge])
    expected_rel = relevance([r["original"] for r in ROWS[:2]], preds[:2]).scores
    assert [r["relevance"] for r in records[:2]] == pytest.approx([s.f1 for s in expected_rel])
    assert [r["fkgl"] for r in records] == pytest.approx(
        [s.fkgl for s in readability(preds).scores])
    assert [r["factuality"] for r in records[:2]] == [1.0, 1.0]
    # row c has no reference: readability only
    assert records[2]["rouge_l"] is None and records[2]["factuality"] is None
    assert records[2]["smog"] is not None
    assert len(judge.requests) == 2


def test_metrics_csv_with_aliases(tmp_path: Path) -> None:
    data = tmp_path / "pairs.csv"
    with data.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["response", "answer"])
        writer.writeheader()
        writer.writerow({"response": "今天天气很好", "answer": "今天天气不错"})
        writer.writerow({"response": "the cat sat", "answer": "the cat sat down"})
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(cli_main.app, [
        "metrics", str(data), "-m", "rouge", "--lang", "auto", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "rouge_l"]
    expected = rouge_l(["今天天气很好", "the cat sat"], ["今天天气不错", "the cat sat down"],
                       lang="auto")
    assert [float(r["rouge_l"]) for r in rows] == pytest.approx([s.f1 for s in expected.scores])


def test_read_scoring_file_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"predictions": "x", "references": "y"}])
    assert read_scoring_file(path) == (["x"], ["y"], [0])
    path = write_jsonl(tmp_path / "q.jsonl", [{"prediction": "x"}])
    assert read_scoring_file(path) == (["x"], None, [0])


@pytest.mark.parametrize(
    ("rows", "args", "message"),
    [
        ([{"text": "x"}], [], "prediction column"),
        ([{"prediction": "x"}], ["--metric", "rouge_l"], "no reference column"),
        ([{"prediction": "x", "reference": "y"}], ["--metric", "bleu"], "unknown metric 'bleu'"),
    ],
)
def test_metrics_bad_input_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture, rows: list[dict],
                                   args: list[str], message: str) -> None:
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert run_main(monkeypatch, "metrics", str(data), *args) == 2
    assert message in capsys.readouterr().err
