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


def _graded_items() -> list[dict]:
    """12 seed-004 items with human grades; the scripted judge's grade is in the answer."""
    judge = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 2, 4]
    human = [1, 2, 3, 4, 5, 2, 2, 4, 4, 5, 1, 5]
    return [{"inputs": f"Question {i}?", "predictions": f"answer graded {j}",
             "human_score": h} for i, (j, h) in enumerate(zip(judge, human, strict=True))]


def _judge_by_answer(request) -> str:  # noqa: ANN001 - a GenerationRequest
    from tests.fakes import request_text

    grade = request_text(request).rsplit("answer graded ", 1)[1][0]
    return json.dumps({"score": int(grade), "justification": f"graded {grade}"})


def test_summary_shows_the_job_reports_agreement(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 14 item 5: `evalserve evaluate` on items with human grades prints the job
    report's agreement (QWK with its interval, κ, α, Spearman, exact/adjacent, MAE, the
    largest disagreements) with the numbers of `job_report`, and `--mlflow` logs the same
    numbers as the run's metrics."""
    from mlflow import MlflowClient

    from evalserve.engines import registry
    from evalserve.judge.report import flat_metrics, job_report
    from evalserve.judge.rubric import load_rubric
    from tests.cli.helpers import run_main, write_jsonl
    from tests.fakes import ScriptedEngine

    engine = ScriptedEngine(_judge_by_answer)
    monkeypatch.setattr(registry, "create_engine", lambda settings: engine)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    source = write_jsonl(tmp_path / "graded.jsonl", _graded_items())
    out = tmp_path / "results.jsonl"
    code = run_main(monkeypatch, "evaluate", str(source), "--rubric", "judge-1-5",
                    "--out", str(out), "--mlflow", "--experiment", "graded")
    printed = capsys.readouterr().out
    assert code == 0, printed
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["human_score"] for r in records] == [i["human_score"] for i in _graded_items()]

    report = job_report(records, load_rubric("judge-1-5").model_dump(mode="json"), {})
    score = report["agreement"]["score"]
    assert score["n"] == 12 and score["qwk"] is not None
    text = " ".join(printed.split())  # rich wraps and pads; compare words
    low, high = score["qwk_ci"]
    assert f"QWK [95% CI] │ {score['qwk']:.3f} [{low:.3f}, {high:.3f}]" in text
    assert f"Cohen's kappa │ {score['kappa']:.3f}" in text
    assert f"Krippendorff's alpha (ordinal) │ {score['krippendorff_alpha']:.3f}" in text
    assert f"Spearman rho [95% CI] │ {score['spearman']:.3f}" in text
    assert f"exact agreement │ {score['exact']:.1%}" in text
    assert f"MAE │ {score['mae']:.3f}" in text
    assert "largest disagreements (score vs human)" in text
    worst = score["disagreements"][0]
    assert f"{worst['difference']:+.2f}" in text

    [run] = MlflowClient(tracking_uri=uri).search_runs(
        [MlflowClient(tracking_uri=uri).get_experiment_by_name("graded").experiment_id])
    expected = flat_metrics(report)
    assert {k: run.data.metrics[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    scores = [r["score"] for r in records]
    assert run.data.metrics["llm_judge_accuracy/v1/mean"] == pytest.approx(
        sum(scores) / len(scores))


def test_summary_without_human_grades_has_no_agreement(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from evalserve.engines import registry
    from tests.cli.helpers import run_main, write_jsonl
    from tests.fakes import ScriptedEngine

    monkeypatch.setattr(registry, "create_engine",
                        lambda settings: ScriptedEngine(_judge_by_answer))
    items = [{k: v for k, v in i.items() if k != "human_score"} for i in _graded_items()[:3]]
    source = write_jsonl(tmp_path / "plain.jsonl", items)
    assert run_main(monkeypatch, "evaluate", str(source), "--rubric", "judge-1-5") == 0
    printed = capsys.readouterr().out
    assert "complete: 3 results, 3 scored" in printed and "agreement" not in printed
