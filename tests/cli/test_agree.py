"""`evalserve agree`: agreement of a results file's judge scores with human grades."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from evalserve.cli.agree import parse_rating
from evalserve.errors import InvalidInputError
from tests.cli.helpers import run_main, write_jsonl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agreement"

HUMAN = [1, 2, 3, 4, 5, 3, 2, 4]
JUDGE = [1, 3, 3, 4, 4, 3, 1, 5]
EXPECTED = [1.2, 2.6, 3.1, 3.9, 4.4, 3.0, 1.5, 4.8]


def _results(with_human: bool = True) -> list[dict]:
    rows = []
    for i, (h, j, e) in enumerate(zip(HUMAN, JUDGE, EXPECTED)):
        row = {"id": f"q{i}", "score": j, "justification": "ok", "status": "scored",
               "score_expected": e}
        if with_human:
            row["human_score"] = h
        rows.append(row)
    return rows


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def test_jsonl_results_compare_score_and_score_expected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "results.jsonl", _results())
    assert run_main(monkeypatch, "agree", str(path), "--human", "human_score", "--scale", "1-5",
                    "--json") == 0
    data = _json(capsys)
    assert data["human"] == "human_score"
    assert list(data["results"]) == ["score", "score_expected"]
    score = data["results"]["score"]
    assert score["n"] == 8
    assert score["qwk"] == cohen_kappa_score(HUMAN, JUDGE, weights="quadratic",
                                             labels=[1, 2, 3, 4, 5])
    assert (score["exact"], score["adjacent"]) == (0.5, 1.0)
    assert score["confusion"]["labels"] == [1, 2, 3, 4, 5]
    assert score["disagreements"][0] == {"id": "q1", "judge": 3, "human": 2, "difference": 1.0}
    expected = data["results"]["score_expected"]
    assert expected["mae"] == pytest.approx(sum(abs(e - h) for e, h in zip(EXPECTED, HUMAN)) / 8)
    assert expected["qwk"] == cohen_kappa_score(HUMAN, [1, 3, 3, 4, 4, 3, 2, 5],
                                                weights="quadratic", labels=[1, 2, 3, 4, 5])


def test_the_table_names_each_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    path = write_jsonl(tmp_path / "results.jsonl", _results())
    assert run_main(monkeypatch, "agree", str(path), "--human", "human_score") == 0
    out = capsys.readouterr().out
    qwk = cohen_kappa_score(HUMAN, JUDGE, weights="quadratic", labels=[1, 2, 3, 4, 5])
    for text in ("Agreement with human grades (human_score), 8 rows", "QWK", f"{qwk:.3f}",
                 "Krippendorff's alpha (ordinal)", "exact agreement", "50.0%",
                 "adjacent agreement (±1)", "100.0%",
                 "confusion matrix: human_score (rows) x score (columns)",
                 "largest disagreements: score vs human_score", "q1", "+1.00",
                 "rounded to the scale"):
        assert text in out, text


def test_csv_from_elsewhere_with_missing_grades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "graded.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "llm_grade", "teacher"])
        writer.writerows([["ana", "4", "4"], ["biel", "2", ""], ["carla", "3", "3,5"],
                          ["dani", "", "2"], ["eva", "5", "NA"], ["pau", "1", "1"]])
    assert run_main(monkeypatch, "agree", str(path), "--human", "teacher", "--score",
                    "llm_grade", "--id", "student", "--json") == 0
    result = _json(capsys)["results"]["llm_grade"]
    assert (result["n"], result["items"], result["missing_human"], result["missing_judge"]) == (
        3, 6, 2, 1)
    assert result["scale"] == [1, 2, 3, 4, 5]
    assert result["disagreements"] == [{"id": "carla", "judge": 3, "human": 3.5,
                                        "difference": -0.5}]


def test_human_grades_from_the_items_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Our result records do not repeat the items' fields: --items joins them by id."""
    results = write_jsonl(tmp_path / "results.jsonl", _results(with_human=False))
    items = write_jsonl(tmp_path / "items.jsonl",
                        [{"id": f"q{i}", "human_score": h} for i, h in enumerate(HUMAN)][::-1])
    assert run_main(monkeypatch, "agree", str(results), "--items", str(items), "--human",
                    "human_score", "--score", "score", "--json") == 0
    score = _json(capsys)["results"]["score"]
    assert score["n"] == 8
    assert score["qwk"] == cohen_kappa_score(HUMAN, JUDGE, weights="quadratic",
                                             labels=[1, 2, 3, 4, 5])


def test_items_without_ids_match_the_records_by_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A job names an item without an id by its index; the records' `id` is that index."""
    results = write_jsonl(tmp_path / "results.jsonl",
                          [{"id": str(i), "score": j} for i, j in enumerate(JUDGE)])
    items = write_jsonl(tmp_path / "items.jsonl", [{"human_score": h} for h in HUMAN])
    assert run_main(monkeypatch, "agree", str(results), "--items", str(items), "--human",
                    "human_score", "--json") == 0
    assert _json(capsys)["results"]["score"]["n"] == 8


@pytest.mark.parametrize(("args", "rows", "message"), [
    (["--human", "teacher"], _results(), "has no column 'teacher'"),
    (["--human", "human_score", "--score", "nota"], _results(), "has no column 'nota'"),
    (["--human", "human_score"], [{"id": "a", "nota": 3, "human_score": 3}],
     "name the judge's score column with --score"),
    (["--human", "human_score"], [{"id": "a", "score": None, "human_score": 3},
                                  {"id": "b", "score": 4, "human_score": None}],
     "no row of .* has both a human grade"),
    (["--human", "human_score"], [{"id": "a", "score": "good", "human_score": 3}],
     "row 1: `score` must be a number"),
    (["--human", "human_score", "--scale", "1-3"], _results(), "outside the scale 1-3"),
])
def test_errors_exit_2_and_say_what_to_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        args: list[str], rows: list[dict], message: str) -> None:
    path = write_jsonl(tmp_path / "results.jsonl", rows)
    assert run_main(monkeypatch, "agree", str(path), *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:")
    assert re.search(message, err), err


def test_items_that_match_no_result_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    results = write_jsonl(tmp_path / "results.jsonl", _results(with_human=False))
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": "other", "human_score": 3}])
    assert run_main(monkeypatch, "agree", str(results), "--items", str(items), "--human",
                    "human_score") == 2
    assert "no id of" in capsys.readouterr().err


@pytest.mark.parametrize(("cell", "value"), [
    (None, None), ("", None), ("  ", None), ("NA", None), ("n/a", None), ("-", None),
    (float("nan"), None), (4, 4.0), ("4", 4.0), (" 3.5 ", 3.5), ("3,5", 3.5)])
def test_parse_rating(cell: object, value: float | None) -> None:
    assert parse_rating(cell, "c", 1) == value


@pytest.mark.parametrize("cell", ["good", True, "inf", [3]])
def test_parse_rating_refuses_what_is_not_a_number(cell: object) -> None:
    with pytest.raises(InvalidInputError, match="row 7: `c` must be a number"):
        parse_rating(cell, "c", 7)


def test_the_example_set_is_the_labelled_set_without_its_labels() -> None:
    """examples/agreement: 40 items, half Catalan and half English, graded 1-5 by a human;
    items.jsonl (what the judge grades) is labelled.jsonl without `human_score` and `lang`."""
    labelled, items = _lines(EXAMPLES / "labelled.jsonl"), _lines(EXAMPLES / "items.jsonl")
    assert len(labelled) == 40
    assert sorted(r["lang"] for r in labelled) == ["ca"] * 20 + ["en"] * 20
    assert {r["human_score"] for r in labelled} == {1, 2, 3, 4, 5}
    assert items == [{k: r[k] for k in ("id", "question", "reference", "answer")}
                     for r in labelled]


def test_the_example_set_runs_through_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The README's second command on results shaped like `evalserve evaluate --out`'s."""
    labelled = _lines(EXAMPLES / "labelled.jsonl")
    results = write_jsonl(tmp_path / "results.jsonl",
                          [{"id": r["id"], "score": r["human_score"], "justification": "",
                            "status": "scored"} for r in labelled])
    assert run_main(monkeypatch, "agree", str(results), "--items",
                    str(EXAMPLES / "labelled.jsonl"), "--human", "human_score", "--scale",
                    "1-5", "--json") == 0
    score = _json(capsys)["results"]["score"]
    assert (score["n"], score["qwk"], score["exact"]) == (40, 1.0, 1.0)
