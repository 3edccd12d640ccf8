"""`evalserve calibrate DATA` on a small training file with a scripted judge: the targets
file, the progress bar, the summary table, its options and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalserve.cli import main as cli_main
from evalserve.metrics import readability
from evalserve.metrics.calibration import sample_indices
from evalserve.metrics.targets import METRICS, CalibrationTargets
from tests.cli.helpers import run_main, write_jsonl
from tests.fakes import ScriptedEngine

ROWS = [{"original": f"Original text number {i} about blood pressure and exercise.",
         "human": f"Human summary {i}. It is short."} for i in range(5)]


def test_calibrate_writes_targets_with_progress(tmp_path: Path, judge: ScriptedEngine) -> None:
    rows = [{"original": f"Original text number {i} about blood pressure and exercise.",
             "human": f"Human summary {i}. It is short."} for i in range(5)]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    save_to = tmp_path / "targets.json"
    result = CliRunner().invoke(cli_main.app, [
        "calibrate", str(data), "--save-to", str(save_to), "--subset", "0.8",
        "--chunk-size", "2"])
    assert result.exit_code == 0, result.output
    targets = json.loads(save_to.read_text())
    assert targets["n"] == 4  # round(0.8 * 5)
    assert targets["factuality"] == {"mean": 1.0, "std": 0.0}
    assert targets["meta"]["factuality_method"] == "llm_judge"
    humans = [r["human"] for r in rows]
    fkgl = [s.fkgl for s in readability(humans).scores]
    assert min(fkgl) <= targets["fkgl"]["mean"] <= max(fkgl)
    assert "4/4" in result.output  # the progress bar reached the end
    assert len(judge.requests) == 4


def test_calibrate_prints_a_table_of_the_targets_and_where_they_went(
        tmp_path: Path, judge: ScriptedEngine) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", ROWS)
    result = CliRunner().invoke(cli_main.app, ["calibrate", str(data), "--subset", "1"])
    assert result.exit_code == 0, result.output
    saved = tmp_path / "targets.json"  # the default, in the working directory
    targets = CalibrationTargets.load(saved)
    assert targets.n == 5
    assert "Targets from 5 human texts" in result.output
    for metric in METRICS:
        assert metric in result.output
        assert f"{targets.get(metric).mean:.4f}" in result.output
    assert "factuality by llm_judge; targets written to targets.json" in result.output


def test_calibrate_seed_picks_the_subset(tmp_path: Path, judge: ScriptedEngine) -> None:
    rows = [{"original": f"Original text {i}.", "human": "Short words. " * (i + 1)}
            for i in range(4)]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    out = tmp_path / "t.json"
    result = CliRunner().invoke(cli_main.app, [
        "calibrate", str(data), "--save-to", str(out), "--subset", "0.5", "--seed", "3",
        "--lang", "es"])
    assert result.exit_code == 0, result.output
    picked = [rows[i]["human"] for i in sample_indices(4, 0.5, seed=3)]
    targets = json.loads(out.read_text())
    assert targets["n"] == 2
    assert targets["smog"]["mean"] == pytest.approx(readability(picked, lang="es").mean.smog)


@pytest.mark.parametrize(("args", "message"), [
    (["missing.jsonl"], "not found"),
    (["train.jsonl", "--subset", "1.5"], "subset"),
    (["train.jsonl", "--chunk-size", "0"], "chunk_size"),
])
def test_bad_input_is_one_error_line_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        judge: ScriptedEngine, args: list[str], message: str) -> None:
    write_jsonl(tmp_path / "train.jsonl", ROWS)
    assert run_main(monkeypatch, "calibrate", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert not (tmp_path / "targets.json").exists()
    assert judge.requests == []
