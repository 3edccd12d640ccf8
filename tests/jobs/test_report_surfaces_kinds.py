"""Every surface shows the same numbers for the same job, for each kind of job (issue 14
item 5): a jury that samples, repeated sampling, pairwise, each with human grades. One test
per kind reads them all, over real HTTP, from the job `evalserve evaluate --server --mlflow`
ran: the CLI summary, `GET /jobs/{id}`, the SSE `complete` event, `GET /jobs/{id}/agreement`,
the results export (JSON report, JSONL records, CSV columns), and the MLflow runs of both
paths (the CLI's, and the API's for the same submission with `track`): metrics (the report's
`flat_metrics` and seed 004's `llm_judge_accuracy/v1/*`), the confusion-matrix image, the
report artifact and the per-row table."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlflow import MlflowClient

from evalserve.judge.report import flat_metrics
from evalserve.settings import Settings
from tests.cli.helpers import run_main, write_jsonl
from tests.cli.scripted_server import serving
from tests.fakes import MultiModelEngine, request_text
from tests.jobs.helpers import answer, item
from tests.server.openai_app import make_settings
from tests.server.test_sse import parse_events

HUMAN = [0, 1, 2, 3, 4, 5, 4, None]


def _grade(request: Any) -> int:
    found = re.search(r"\(h=(\d)\)", request_text(request))
    return int(found.group(1)) if found else 2


def scripted() -> MultiModelEngine:
    """`small` grades human + 1 (at most 5) on even seeds, human on odd ones; `large` the
    human grade; a pair: the longer response (logged as the known winner)."""
    def small(request: Any) -> str:
        if "Response A:" in request_text(request):
            return pair_answer(request)
        bump = 1 if (request.seed or 0) % 2 == 0 else 0
        return answer(min(5, _grade(request) + bump), "small")

    return MultiModelEngine({"small": small, "large": lambda r: answer(_grade(r), "large")})


def pair_answer(request: Any) -> str:
    match = re.search(r"Response A: (.*)\n\nResponse B: (.*)$", request_text(request), re.S)
    assert match is not None
    a, b = match.group(1).strip(), match.group(2).strip()
    return json.dumps({"feedback": "compared", "verdict": "A" if len(a) > len(b) else "B"})


def graded_items() -> list[dict]:
    return [item(i) if h is None else item(i, respuesta=f"Resposta (h={h}).", human_score=h)
            for i, h in enumerate(HUMAN)]


def pair_items() -> list[dict]:
    systems = ["long", "mid", "short"]
    text = {"long": "a long and careful answer", "mid": "an answer", "short": "no"}
    out = []
    for i in range(6):
        a, b = systems[i % 3], systems[(i + 1) % 3]
        better = 1.0 if len(text[a]) > len(text[b]) else 0.0
        out.append({"id": f"p{i}", "question": f"Question {i}?", "response_a": text[a],
                    "response_b": text[b], "system_a": a, "system_b": b,
                    "human_score": better if i != 5 else 0.5})
    return out


KINDS = {
    "jury-samples": (graded_items, ["--judge", "small", "--judge", "large", "--samples", "2",
                                    "--min-successful", "1"],
                     {"judges": [{"model": "small"}, {"model": "large"}], "samples": 2,
                      "min_successful": 1}),
    "samples": (graded_items, ["--samples", "3", "--reducer", "median", "--judge", "small"],
                {"samples": 3, "reducer": "median", "judges": [{"model": "small"}]}),
    "pairwise": (pair_items, ["--rubric", "pairwise-preference"],
                 {"rubric": "pairwise-preference"}),
}


def _run_metrics(uri: str, experiment: str) -> tuple[Any, dict[str, float]]:
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run, run.data.metrics


def _artifact_json(uri: str, run_id: str, path: str) -> Any:
    local = MlflowClient(tracking_uri=uri).download_artifacts(run_id, path)
    return json.loads(Path(local).read_text(encoding="utf-8"))


def _check_run(uri: str, experiment: str, report: dict, records: list[dict],
               score_field: str) -> None:
    run, metrics = _run_metrics(uri, experiment)
    expected = flat_metrics(report)
    assert expected and {k: metrics[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    scores = [r[score_field] for r in records if r["status"] == "scored"]
    assert metrics["llm_judge_accuracy/v1/mean"] == pytest.approx(np.mean(scores))
    assert metrics["llm_judge_accuracy/v1/variance"] == pytest.approx(np.var(scores))
    assert metrics["llm_judge_accuracy/v1/p90"] == pytest.approx(np.percentile(scores, 90))
    client = MlflowClient(tracking_uri=uri)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.json", "confusion_matrix.png", "eval_results_table.json"} <= artifacts
    assert _artifact_json(uri, run.info.run_id, "report.json") == report
    table = _artifact_json(uri, run.info.run_id, "eval_results_table.json")
    columns = table["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in table["data"]]
    assert [row["score"] for row in rows] == [r[score_field] for r in records]
    assert [row["human_score"] for row in rows] == [r.get("human_score") for r in records]


def _printed_numbers(report: dict) -> list[str]:
    """Numbers of the report as the CLI summary prints them."""
    out = []
    score = report["agreement"]["score"]
    ci = score["qwk_ci"]
    out.append(f"QWK [95% CI] │ {score['qwk']:.3f}"
               + ("" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"))
    out.append(f"MAE │ {score['mae']:.3f}")
    if "jury" in report and report["jury"]["alpha"] is not None:
        out.append(f"inter-judge Krippendorff's alpha {report['jury']['alpha']:.3f}")
    if "samples" in report:
        out.append(f"mean per-item spread {report['samples']['mean_spread']:.3f}")
    if "pairwise" in report:
        out.append(f"position consistency {report['pairwise']['consistency_rate']:.1%}")
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_surface_shows_the_same_numbers(kind: str, tmp_path: Path, settings: Settings,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    make_items, flags, body = KINDS[kind]
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    (tmp_path / "mlflow").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "cli"))
    source = write_jsonl(tmp_path / "items.jsonl", make_items())
    out = tmp_path / "results.jsonl"
    with serving(make_settings(settings, mlflow_tracking_uri=uri), scripted()) as url:
        code = run_main(monkeypatch, "evaluate", str(source), "--server", url, "--out",
                        str(out), "--mlflow", "--experiment", "cli", *flags)
        printed = " ".join(capsys.readouterr().out.split())
        assert code == 0, printed
        with httpx.Client(base_url=url, timeout=60) as http:
            [job] = http.get("/jobs").json()["jobs"]
            job_id = job["job_id"]
            view = http.get(f"/jobs/{job_id}").json()
            complete = parse_events(http.get(f"/stream/{job_id}").text)[-1]
            agreement = http.get(f"/jobs/{job_id}/agreement").json()
            exported = http.get(f"/jobs/{job_id}/results", params={"format": "json"}).json()
            lines = http.get(f"/jobs/{job_id}/results", params={"format": "jsonl"}).text
            table = http.get(f"/jobs/{job_id}/results", params={"format": "csv"}).text
            tracked = http.post("/evaluate", json={"items": make_items(), **body,
                                                   "track": {"experiment": "api"}}).json()
            events = parse_events(http.get(tracked["stream_url"]).text)

    report = view["report"]
    assert complete["event"] == "complete"
    assert report == complete["data"]["report"] == exported["report"]
    assert events[-1]["data"]["report"] == report  # the same submission through the API
    assert {"tracking", "complete"} <= {e["event"] for e in events}
    assert agreement["score"] == report["agreement"]["score"]
    assert agreement["score_expected"] == report["agreement"].get("score_expected")
    records = [json.loads(line) for line in lines.splitlines()]
    assert records == exported["results"]
    assert [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] == records
    score_field = "score" if kind == "pairwise" else "nota"
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [float(r[score_field]) for r in rows] == [r[score_field] for r in records]
    assert [r["human_score"] or None for r in rows] == [
        None if r.get("human_score") is None else str(r["human_score"]) for r in records]
    for number in _printed_numbers(report):
        assert number in printed, number
    _check_run(uri, "cli", report, records, score_field)
    _check_run(uri, "api", report, records, score_field)
    if kind == "jury-samples":
        assert set(report["samples"]["per_judge"]) == {"teacher-eval-ca-1", "teacher-eval-ca-2"}
        api_params = _run_metrics(uri, "api")[0].data.params
        assert api_params["judges"] == ("teacher-eval-ca-1=small/teacher-eval-ca,"
                                        "teacher-eval-ca-2=large/teacher-eval-ca")
        assert (api_params["samples"], api_params["min_successful"]) == ("2", "1")
        assert api_params["temperature"] == "0.7"
        cli_params = _run_metrics(uri, "cli")[0].data.params
        assert cli_params["judges"] == "1=small/job rubric,2=large/job rubric"
        assert (cli_params["samples"], cli_params["temperature"]) == ("2", "0.7")
        assert rows[0]["judges.teacher-eval-ca-1.samples.2"] != ""
    if kind == "pairwise":
        assert [r["system"] for r in report["pairwise"]["leaderboard"]] == ["long", "mid",
                                                                            "short"]
