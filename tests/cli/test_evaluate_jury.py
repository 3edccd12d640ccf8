"""`evalserve evaluate` passes every job option (a jury by `--judge MODEL[:RUBRIC]`,
`--aggregate`, `--min-successful`, `--samples`, `--reducer`, `--temperature`,
`--human-field`, `--model`), in-process and with `--server`, and its summary shows the jury
and samples sections of the job's report."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from evalserve.cli.evaluate import job_options, judge_spec
from evalserve.engines import registry
from evalserve.errors import InvalidInputError
from evalserve.settings import Settings
from tests.cli.helpers import run_main, write_jsonl
from tests.cli.scripted_server import serving
from tests.fakes import MultiModelEngine
from tests.jobs.helpers import answer, item

HUMAN = [2, 3, 4, None]
"""The items' `nota_profe` (None: the item has none)."""
FLAGS = ["--judge", "small", "--judge", "large:teacher-eval-ca", "--samples", "3",
         "--reducer", "median", "--aggregate", "mean", "--min-successful", "1",
         "--temperature", "0.9", "--human-field", "nota_profe"]



def two_models() -> MultiModelEngine:
    """`small` gives 2, 3, 2 over its three samples (seeds 0, 3, 6: 2 + seed // 3 % 2);
    `large` always 4. So each item: small's median 2, large's 4, their mean 3."""
    return MultiModelEngine({"small": lambda r: answer(2 + (r.seed // 3) % 2, "small"),
                             "large": lambda r: answer(4, "large")})


def items_file(tmp_path: Path) -> Path:
    rows = [item(i) if h is None else item(i, nota_profe=h) for i, h in enumerate(HUMAN)]
    return write_jsonl(tmp_path / "items.jsonl", rows)


def check_records(out: Path) -> list[dict]:
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["nota"] for r in records] == [3.0] * 4
    assert [r.get("human_score") for r in records] == [2.0, 3.0, 4.0, None]
    for record in records:
        small, large = record["judges"]
        assert (small["model"], small["samples"], small["score"]) == ("small", [2, 3, 2], 2)
        assert (large["model"], large["samples"], large["spread"]) == ("large", [4, 4, 4], 0.0)
        assert small["spread"] == statistics.pstdev([2, 3, 2])
        assert (record["aggregate"], record["reducer"]) == ("mean", "median")
    return records


def check_summary(printed: str) -> None:
    text = " ".join(printed.split())
    assert "complete: 4 results, 4 scored, 0 unscored, mean nota 3.000" in text
    assert "jury (mean): inter-judge Krippendorff's alpha" in text
    assert "each judge's self-consistency over its samples" in text
    assert "samples: 3 per item (median)" in text
    assert "agreement with human grades (4 items)" in text


def test_every_job_option_reaches_an_in_process_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    engine = two_models()
    monkeypatch.setattr(registry, "create_engine", lambda settings: engine)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "results.jsonl"
    code = run_main(monkeypatch, "evaluate", str(items_file(tmp_path)), "--out", str(out),
                    *FLAGS)
    printed = capsys.readouterr().out
    assert code == 0, printed
    check_records(out)
    check_summary(printed)
    assert {r.temperature for r in engine.requests} == {0.9}
    assert sorted(r.seed for r in engine.requests if r.model == "large") == [9] * 4 + [
        12] * 4 + [15] * 4  # the second judge's own seeds


def test_every_job_option_reaches_a_server_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    engine = two_models()
    out = tmp_path / "results.jsonl"
    with serving(settings, engine) as url:
        code = run_main(monkeypatch, "evaluate", str(items_file(tmp_path)), "--server", url,
                        "--out", str(out), *FLAGS)
    printed = capsys.readouterr().out
    assert code == 0, printed
    check_records(out)
    check_summary(printed)
    assert {r.temperature for r in engine.requests} == {0.9}


def test_model_names_the_server_jobs_judge_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    engine = two_models()
    out = tmp_path / "results.jsonl"
    with serving(settings, engine) as url:
        code = run_main(monkeypatch, "evaluate", str(items_file(tmp_path)), "--server", url,
                        "--out", str(out), "--model", "large", "--human-field", "nota_profe")
        printed = capsys.readouterr()
        assert code == 0, printed.out + printed.err
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["nota"] for r in records] == [4] * 4
        assert {r.model for r in engine.requests} == {"large"}
        refused = run_main(monkeypatch, "evaluate", str(items_file(tmp_path)), "--server",
                           url, "--model", "huge", "--human-field", "nota_profe")
    assert refused != 0
    assert "model 'huge' is not served here; served models: small, large" in " ".join(
        capsys.readouterr().err.split())


@pytest.mark.parametrize(("spec", "judge"), [
    ("small", {"model": "small", "rubric": None}),
    ("small:judge-1-5", {"model": "small", "rubric": "judge-1-5"}),
    (":judge-1-5", {"model": None, "rubric": "judge-1-5"}),
    ("llama3:8b:", {"model": "llama3:8b", "rubric": None}),
])
def test_judge_specs(spec: str, judge: dict) -> None:
    assert judge_spec(spec) == judge


def test_a_judge_spec_needs_a_model_or_a_rubric() -> None:
    with pytest.raises(InvalidInputError, match="--judge ':': give MODEL, MODEL:RUBRIC"):
        judge_spec(":")


def test_options_not_given_are_left_out() -> None:
    assert job_options(None, None, None, None, None, None) == {}
    assert job_options(["a"], "median", 1, 2, "mode", 0.5) == {
        "judges": [{"model": "a", "rubric": None}], "aggregate": "median",
        "min_successful": 1, "samples": 2, "reducer": "mode", "temperature": 0.5}


def test_the_labelled_example_set_runs_in_one_command(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`evalserve evaluate examples/agreement/labelled.jsonl --rubric judge-1-5` (the README's
    command, here on a scripted judge that gives the human grade back): 40 items, Catalan and
    English, every one scored and compared, perfect agreement."""
    from tests.fakes import ScriptedEngine, request_text

    labelled = Path(__file__).parents[2] / "examples" / "agreement" / "labelled.jsonl"
    grades = {json.loads(line)["answer"]: json.loads(line)["human_score"]
              for line in labelled.read_text(encoding="utf-8").splitlines()}

    def script(request: object) -> str:
        text = request_text(request)
        answer_text = text.rsplit("Answer: ", 1)[1].split("\n")[0].strip()
        return json.dumps({"justification": "as the teacher", "score": grades[answer_text]})

    monkeypatch.setattr(registry, "create_engine", lambda settings: ScriptedEngine(script))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    code = run_main(monkeypatch, "evaluate", str(labelled), "--rubric", "judge-1-5")
    text = " ".join(capsys.readouterr().out.split())
    assert code == 0, text
    assert "complete: 40 results, 40 scored, 0 unscored" in text
    assert "agreement with human grades (40 items)" in text
    assert "QWK [95% CI] │ 1.000 [1.000, 1.000]" in text
    assert "exact agreement │ 100.0%" in text
