"""`log_evaluation_run` against a real MLflow SQLite store in a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from evalserve import __version__
from evalserve.errors import TrackingError
from evalserve.settings import load_settings
from evalserve.tracking.mlflow import (
    EXPERIMENT_TYPE,
    RUBRIC_ARTIFACT,
    TABLE_ARTIFACT,
    check_tracking_uri,
    default_tracking_uri,
    log_evaluation_run,
    resolve_tracking_uri,
)
from tests.e2e.server import free_port


def test_run_has_params_metrics_tags_table_and_rubric(tmp_path: Path, records, items,
                                                      rubric) -> None:
    from mlflow import MlflowClient

    uri = default_tracking_uri(tmp_path / "data")
    run = log_evaluation_run(
        records, rubric=rubric, items=items, tracking_uri=uri, experiment="unit",
        run_name="first", metrics_extra={"items_per_second": 2.5},
        params={"engine": "transformers", "model": "smol", "temperature": 0.0,
                "max_tokens": 64},
    )
    client = MlflowClient(tracking_uri=uri)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "first"
    assert client.get_experiment(run.experiment_id).name == "unit"
    assert got.data.params == {
        "engine": "transformers", "model": "smol", "temperature": "0.0", "max_tokens": "64",
        "rubric_name": "qa-1-5", "rubric_hash": rubric.hash(), "scale": "1-5",
        "rubric_language": "en", "rubric_format": "json"}
    m = got.data.metrics
    assert m["score_mean"] == pytest.approx(11 / 3) and m["unscored_count"] == 1
    assert m["score_count_5"] == 2 and m["items_per_second"] == 2.5
    assert m["rouge_l_mean"] == pytest.approx(0.25)
    assert got.data.tags["experiment_type"] == EXPERIMENT_TYPE
    assert got.data.tags["evalserve_version"] == __version__

    # artifacts live next to the database, not in the working directory
    table_path = Path(client.download_artifacts(run.run_id, TABLE_ARTIFACT, str(tmp_path)))
    table = json.loads(table_path.read_text())
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert [r["predictions"] for r in rows] == [i["predictions"] for i in items]
    assert rows[0]["score"] == 5 and rows[0]["justification"] == "Correct."
    assert rows[3]["status"] == "unscored" and rows[3]["score"] is None
    assert (tmp_path / "data" / "mlartifacts").is_dir() and not (tmp_path / "mlruns").exists()
    rubric_path = client.download_artifacts(run.run_id, RUBRIC_ARTIFACT, str(tmp_path))
    assert yaml.safe_load(Path(rubric_path).read_text())["name"] == "qa-1-5"

    # a second run reuses the experiment
    again = log_evaluation_run(records[:1], rubric=rubric, tracking_uri=uri, experiment="unit")
    assert again.experiment_id == run.experiment_id and again.run_id != run.run_id


def test_unwritable_store_is_a_clear_error(tmp_path: Path, records, rubric) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    uri = f"sqlite:///{blocker}/sub/mlflow.db"
    with pytest.raises(TrackingError, match="cannot create the MLflow store directory") as info:
        log_evaluation_run(records, rubric=rubric, tracking_uri=uri)
    assert uri in info.value.message


def test_unreachable_server_fails_fast(records, rubric) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingError, match="unreachable") as info:
        log_evaluation_run(records, rubric=rubric, tracking_uri=uri)
    assert uri in info.value.message and "MLFLOW_TRACKING_URI" in info.value.message


def test_check_tracking_uri_creates_the_store_directory(tmp_path: Path) -> None:
    check_tracking_uri(f"sqlite:///{tmp_path}/a/b/mlflow.db")
    assert (tmp_path / "a" / "b").is_dir()


def test_tracking_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(data_dir=tmp_path / "d")
    assert resolve_tracking_uri(settings) == f"sqlite:///{(tmp_path / 'd').resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    settings = load_settings(data_dir=tmp_path / "d")
    assert resolve_tracking_uri(settings) == "http://mlflow:5000"
    assert resolve_tracking_uri(settings, "sqlite:///x.db") == "sqlite:///x.db"


def test_tracked_run_shows_its_tracking_uri_without_credentials() -> None:
    """Defect (issue 11, item 7): `MLFLOW_TRACKING_URI` with `user:password@` or a token in
    its query went verbatim into the job's SSE `tracking` event and the run's UI link."""
    from evalserve.tracking.mlflow import TrackedRun

    run = TrackedRun(run_id="r1", experiment_id="7", experiment="e",
                     tracking_uri="https://bob:hunter2@mlflow.example/x?token=abc")
    assert run.as_event() == {"status": "logged", "run_id": "r1", "experiment_id": "7",
                              "experiment": "e", "tracking_uri": "https://***@mlflow.example/x"}
    assert run.ui_url == "https://***@mlflow.example/x/#/experiments/7/runs/r1"


def test_tracking_errors_show_the_uri_without_credentials(records, rubric) -> None:
    """Defect (issue 11, item 7): TrackingError messages (sent to clients in `tracking`
    events) named the tracking URI with its password and token."""
    port = free_port()
    with pytest.raises(TrackingError, match="unreachable") as unreachable:
        log_evaluation_run(records, rubric=rubric,
                           tracking_uri=f"http://bob:hunter2@127.0.0.1:{port}/?token=abc")
    assert f"MLflow tracking server http://***@127.0.0.1:{port}/ is unreachable" in (
        unreachable.value.message)
    with pytest.raises(TrackingError) as failed:  # a store MLflow itself cannot open
        log_evaluation_run(records, rubric=rubric,
                           tracking_uri="postgresql://bob:hunter2@127.0.0.1:1/db?password=zz")
    assert "logging the evaluation to MLflow at postgresql://***@127.0.0.1:1/db failed" in (
        failed.value.message)
    for info in (unreachable, failed):
        assert "hunter2" not in info.value.message and "abc" not in info.value.message
        assert "zz" not in info.value.message


def test_user_tags_cannot_overwrite_mlflow_system_tags(
        tmp_path: Path, records, rubric, caplog: pytest.LogCaptureFixture) -> None:
    """Defect (issue 11, item 7): `tags` were merged over the run's tags unchecked, so
    `mlflow.user`, `mlflow.source.name` or `mlflow.note.content` could be forged."""
    from mlflow import MlflowClient

    uri = default_tracking_uri(tmp_path / "data")
    run = log_evaluation_run(records, rubric=rubric, tracking_uri=uri,
                             tags={"mlflow.user": "mallory", " MLflow.source.name": "x",
                                   "team": "nlp"})
    tags = MlflowClient(tracking_uri=uri).get_run(run.run_id).data.tags
    assert tags["team"] == "nlp"
    assert tags.get("mlflow.user") != "mallory" and " MLflow.source.name" not in tags
    assert tags["mlflow.note.content"].startswith("LLM-as-a-judge evaluation")
    assert "tag 'mlflow.user' not logged: mlflow.* tags are MLflow's own" in caplog.text


def test_user_tags_cannot_relabel_the_runs_rubric_or_version(
        tmp_path: Path, records, rubric) -> None:  # noqa: ANN001
    """Defect: user tags were merged after evalserve's, so `track.tags` could set the run's
    `rubric`, `experiment_type` and `evalserve_version` to anything."""
    from mlflow import MlflowClient

    from evalserve import __version__

    uri = default_tracking_uri(tmp_path / "data")
    run = log_evaluation_run(records, rubric=rubric, tracking_uri=uri,
                             tags={"rubric": "forged", "evalserve_version": "0", "team": "a"})
    tags = MlflowClient(tracking_uri=uri).get_run(run.run_id).data.tags
    assert (tags["rubric"], tags["evalserve_version"], tags["team"]) == \
        (rubric.name, __version__, "a")


def test_a_run_with_human_grades_carries_the_job_report(tmp_path: Path, graded_records,
                                                        graded_items, rubric) -> None:
    """Issue 14 item 5: a judge run's metrics are the job report's `flat_metrics` (the same
    numbers as the API and the CLI), plus seed 004's `llm_judge_accuracy/v1/*`; its artifacts
    hold `report.json`, the confusion-matrix heat maps and a `human_score` table column."""
    import numpy as np
    from mlflow import MlflowClient
    from PIL import Image

    from evalserve.judge.report import flat_metrics, job_report

    uri = default_tracking_uri(tmp_path / "data")
    run = log_evaluation_run(graded_records, rubric=rubric, items=graded_items,
                             tracking_uri=uri, experiment="agree")
    client = MlflowClient(tracking_uri=uri)
    got = client.get_run(run.run_id)
    logged = got.data.metrics

    report = job_report(graded_records, rubric.model_dump(mode="json"), {})
    expected = flat_metrics(report)
    assert expected["agreement/n"] == 4 and "agreement_expected/qwk" in expected
    assert {k: logged[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    assert logged["agreement/qwk"] == pytest.approx(report["agreement"]["score"]["qwk"])

    scores = [5, 1, 5, 3, 2]  # the scored items' scores; the unscored one has none
    assert logged["llm_judge_accuracy/v1/mean"] == pytest.approx(float(np.mean(scores)))
    assert logged["llm_judge_accuracy/v1/variance"] == pytest.approx(float(np.var(scores)))
    assert logged["llm_judge_accuracy/v1/p90"] == pytest.approx(
        float(np.percentile(scores, 90)))
    assert "human_score_mean" not in logged  # a grade, not a judge metric

    paths = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"report.json", "confusion_matrix.png", "confusion_matrix_score_expected.png",
            TABLE_ARTIFACT, RUBRIC_ARTIFACT} <= paths
    stored = json.loads(Path(client.download_artifacts(
        run.run_id, "report.json", str(tmp_path))).read_text(encoding="utf-8"))
    assert stored == report
    png = Path(client.download_artifacts(run.run_id, "confusion_matrix.png", str(tmp_path)))
    with Image.open(png) as image:
        assert image.format == "PNG" and min(image.size) >= 300

    table = json.loads(Path(client.download_artifacts(
        run.run_id, TABLE_ARTIFACT, str(tmp_path))).read_text(encoding="utf-8"))
    assert table["columns"].count("human_score") == 1
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert [r["human_score"] for r in rows] == [4.0, 1.0, 5.0, 3.0, None, 5.0]
    assert "QWK" in got.data.tags["mlflow.note.content"]


def test_a_run_without_human_grades_has_no_agreement(tmp_path: Path, records, rubric) -> None:
    """Without human grades: no agreement metrics or heat map, but `report.json` and seed
    004's `llm_judge_accuracy/v1/*` are still logged (every judge run has them)."""
    from mlflow import MlflowClient

    uri = default_tracking_uri(tmp_path / "data")
    run = log_evaluation_run(records, rubric=rubric, tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    metrics = client.get_run(run.run_id).data.metrics
    assert not [k for k in metrics if k.startswith("agreement")]
    assert metrics["llm_judge_accuracy/v1/mean"] == pytest.approx(11 / 3)
    paths = {a.path for a in client.list_artifacts(run.run_id)}
    assert "report.json" in paths and not [p for p in paths if p.startswith("confusion")]
    table = json.loads(Path(client.download_artifacts(
        run.run_id, TABLE_ARTIFACT, str(tmp_path))).read_text(encoding="utf-8"))
    assert "human_score" not in table["columns"]
