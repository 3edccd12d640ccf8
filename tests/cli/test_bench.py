"""`evalserve bench predict` in-process on a scripted engine (the real server: tests/e2e)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalserve.cli.main import app
from evalserve.engines import registry
from evalserve.errors import InvalidInputError
from evalserve.metrics.rouge import rouge_l
from tests.fakes import ScriptedEngine, request_text

QA = [
    ("中国的首都是哪里？", "中国的首都是北京。"),
    ("水的化学式是什么？", "水的化学式是H2O。"),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many days in a week?", "There are 7 days in a week."),
]
ANSWERS = {
    "中国的首都是哪里？": "北京是中国的首都。北京是中国的首都。北京是中国的首都。",
    "水的化学式是什么？": "H2O",
    "What is the capital of France?": "The capital of France is Paris.",
    "How many days in a week?": "Seven.",
}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p, "answer": a}, ensure_ascii=False)
                              for p, a in QA) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> ScriptedEngine:
    fake = ScriptedEngine(lambda r: ANSWERS[request_text(r)], delay=0.01)
    monkeypatch.setattr(registry, "create_engine", lambda settings: fake)
    return fake


def test_json_summary_and_out_file_match_the_metrics_module(
        data: Path, engine: ScriptedEngine, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["bench", "predict", str(data), "--batch", "--json",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in rows] == [p for p, _ in QA]
    # answers are post-processed like /predict does
    assert rows[0]["prediction"] == "北京是中国的首都。"
    preds = [r["prediction"] for r in rows]
    refs = [r["answer"] for r in rows]
    standard = rouge_l(preds, refs, lang="auto", recipe="standard")
    grader = rouge_l(preds, refs, recipe="grader")
    assert [r["rouge_l"] for r in rows] == [s.f1 for s in standard.scores]
    assert [r["rouge_l_grader"] for r in rows] == [s.f1 for s in grader.scores]
    assert summary["rouge_l"]["mean"] == pytest.approx(standard.mean.f1)
    assert summary["rouge_l_grader"]["mean"] == pytest.approx(grader.mean.f1)
    # the organisers' recipe ignores Chinese characters: a pure-Chinese answer scores 0
    assert rows[0]["rouge_l_grader"] == 0.0 and rows[0]["rouge_l"] > 0.3
    assert summary["rouge_l_grader"]["passes"] == (grader.mean.f1 >= 0.35)
    assert (summary["items"], summary["requests"]) == (4, 1)
    assert summary["output_tokens"] == sum(r["tokens"] for r in rows) > 0
    assert summary["tokens_per_s"] == pytest.approx(summary["output_tokens"] / summary["wall_s"])
    assert sum(summary["rouge_l"]["histogram"].values()) == 4
    assert engine.max_in_flight == 4  # --batch: one batch


def test_concurrency_limits_requests_in_flight(data: Path, engine: ScriptedEngine) -> None:
    result = CliRunner().invoke(app, ["bench", "predict", str(data), "--concurrency", "2",
                                      "--limit", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["items"], summary["requests"]) == (3, 3)
    assert engine.max_in_flight == 2
    assert len(engine.requests) == 3


def test_table_names_both_recipes_and_the_threshold(data: Path, engine: ScriptedEngine) -> None:
    result = CliRunner().invoke(app, ["bench", "predict", str(data)],
                                env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for fragment in ("output tokens/s", "ROUGE-L F1, jieba tokens", "organisers' recipe",
                     "leaderboard threshold", "tokenizer of scripted"):
        assert fragment in result.stdout


def test_batch_and_concurrency_exclude_each_other(data: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "predict", str(data), "--batch",
                                      "--concurrency", "4"])
    assert isinstance(result.exception, InvalidInputError)
    assert "pick one" in result.exception.message


def test_bad_data_files_stop_before_the_engine_starts(tmp_path: Path,
                                                      engine: ScriptedEngine) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"prompt": "q"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["bench", "predict", str(path)])
    assert isinstance(result.exception, InvalidInputError)
    assert 'needs string fields "prompt" and "answer"' in result.exception.message
    assert not engine.started


def test_the_engine_is_closed_after_the_run(data: Path, engine: ScriptedEngine) -> None:
    result = CliRunner().invoke(app, ["bench", "predict", str(data), "--json"])
    assert result.exit_code == 0, result.output
    assert engine.started and engine.closed
