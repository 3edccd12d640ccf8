"""`evalserve evaluate FILE`: grade a file of items in-process, or on a server with `--server`.

In-process it loads the engine and runs the same job service as the server (SQLite job store
in a temporary directory); with `--server URL` it submits to `POST /evaluate` and follows
`/stream/{job_id}`. Either way: a progress bar (done/total, items/s, ETA), the records written
to `--out`, and a summary (score distribution, unscored count, mean) followed by the job's
report (`judge.report.job_report`: agreement with human grades, pairwise, jury, samples), the
one the job's `complete` event carries, so the numbers are the API's.

Every job option of `POST /evaluate` has its flag, the same both ways: `--judge
MODEL[:RUBRIC]` (repeatable: a jury), `--aggregate`, `--min-successful`, `--samples`,
`--reducer`, `--temperature`, `--human-field` (the item field holding the human grade; the
rubric is sent inline with it) and `--model` (in-process the model to load, MODEL_NAME; with
`--server` the job's judge model, one the server serves).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from evalserve.cli.engine import loaded_engine
from evalserve.cli.options import EngineOpt
from evalserve.cli.report import print_report
from evalserve.errors import EngineError, EvalserveError, InvalidInputError
from evalserve.records import read_records, write_records
from evalserve.settings import load_settings

__all__ = ["evaluate"]


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        speed = task.completed / elapsed if elapsed and task.completed else None
        return Text(f"{speed:.2f} items/s" if speed else "- items/s", style="progress.data.speed")


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
                    _RateColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)


async def _follow(events: AsyncIterator[tuple[str, Any]], total: int,
                  console: Console) -> dict[str, Any]:
    """Advance the bar on each batch; the final event's data."""
    final: dict[str, Any] = {}
    with _progress(console) as progress:
        task = progress.add_task("grading", total=total)
        async for kind, data in events:
            if kind == "batch_complete":
                progress.update(task, completed=data["progress"]["completed"])
            elif kind in ("complete", "cancelled") or (kind == "error"
                                                        and data.get("status") == "failed"):
                final = {"event": kind, **data}
    return final


def judge_spec(spec: str) -> dict[str, Any]:
    """`--judge MODEL[:RUBRIC]` as a jury judge: `{"model", "rubric"}`, None for a part left
    empty (the job's model, the job's rubric). The rubric follows the last `:`, so a model
    whose name has one takes a trailing `:` (`llama3:8b:`) or its rubric."""
    model, _, rubric = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if not (model or rubric):
        raise InvalidInputError(f"--judge {spec!r}: give MODEL, MODEL:RUBRIC or :RUBRIC")
    return {"model": model or None, "rubric": rubric or None}


def job_options(judges: list[str] | None, aggregate: str | None, min_successful: int | None,
                samples: int | None, reducer: str | None, temperature: float | None
                ) -> dict[str, Any]:
    """The `POST /evaluate` options these flags give (those not given are left out)."""
    options = {"judges": [judge_spec(j) for j in judges] if judges else None,
               "aggregate": aggregate, "min_successful": min_successful, "samples": samples,
               "reducer": reducer, "temperature": temperature}
    return {k: v for k, v in options.items() if v is not None}


def with_human_field(rubric: dict[str, Any], human_field: str | None) -> dict[str, Any]:
    """`rubric` (a full rubric dict) as an inline rubric reading human grades from
    `human_field` (unchanged without one)."""
    if human_field is None:
        return rubric
    return {**{k: v for k, v in rubric.items() if k != "hash"}, "human_field": human_field}


async def _run_local(settings: Any, items: list[dict], rubric: str | dict | None,
                     metrics: list[str] | None, console: Console,
                     options: dict[str, Any], human_field: str | None
                     ) -> tuple[dict, list[dict], dict]:
    from evalserve.jobs.export import iter_records
    from evalserve.jobs.service import JobService

    async with loaded_engine(settings, console) as engine:
        with tempfile.TemporaryDirectory(prefix="evalserve-") as tmp:
            service = JobService.from_settings(settings.model_copy(update={"data_dir": Path(tmp)}),
                                               engine)
            await service.start()
            try:
                if human_field is not None:
                    rubric = with_human_field(service.kit.load_rubric(rubric)[1], human_field)
                sub = await service.submit(items, rubric, metrics=metrics, **options)

                async def events() -> AsyncIterator[tuple[str, Any]]:
                    async for e in service.follow(sub.job.id):
                        yield e.type, e.data

                final = await _follow(events(), sub.job.total, console)
                records = [r async for r in iter_records(service.store, sub.job.id)]
                return final, records, sub.job.rubric
            finally:
                await service.close()


async def _run_remote(url: str, token: str | None, items: list[dict], rubric: str | dict | None,
                      metrics: list[str] | None, console: Console,
                      options: dict[str, Any], human_field: str | None
                      ) -> tuple[dict, list[dict], dict]:
    import json

    from evalserve.client.jobs import JobsClient

    async with JobsClient(url, token) as remote:
        if human_field is not None:
            full = rubric if isinstance(rubric, dict) else await remote.rubric(
                rubric or "teacher-eval-ca")
            if full is None:
                raise InvalidInputError(f"the server has no rubric named {rubric!r}")
            rubric = with_human_field(full, human_field)
        answer = await remote.submit(items, rubric, metrics=metrics or None, **options)

        async def events() -> AsyncIterator[tuple[str, Any]]:
            async for message in remote.follow(answer["job_id"]):
                yield message.event, message.data

        final = await _follow(events(), answer["total_items"], console)
        text = await remote.results(answer["job_id"], "jsonl")
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        rubric_info: dict[str, Any] = rubric if isinstance(rubric, dict) else {}
        if not rubric_info:
            rubric_info = await remote.rubric(rubric or "teacher-eval-ca") or {}
        return final, records, rubric_info


def _report(final: dict, records: list[dict], rubric: dict) -> dict[str, Any]:
    """The job's report as its `complete` event carries it; computed the same way from the
    records when the event has none (a server from before reports)."""
    report = final.get("report")
    if isinstance(report, dict):
        return report
    from evalserve.judge.report import job_report

    return job_report(records, rubric, {})


def _summary(console: Console, final: dict, records: list[dict], rubric: dict,
             report: dict[str, Any]) -> None:
    score_field = rubric.get("score_field") or "score"
    scores = Counter(r.get(score_field) for r in records if r.get("status") == "scored")
    table = Table(title="score distribution")
    table.add_column(score_field, justify="right")
    table.add_column("items", justify="right")
    for score in sorted(rubric.get("scale") or scores):
        table.add_row(str(score), str(scores.get(score, 0)))
    console.print(table)
    scored = sum(scores.values())
    errors = sum(1 for r in records if r.get("status") == "error")
    unscored = sum(1 for r in records if r.get("status") not in ("scored", "error"))
    failed = f", {errors} errors (their grading failed; see `error`)" if errors else ""
    mean = (sum(s * n for s, n in scores.items()) / scored) if scored else None
    console.print(f"{final.get('event', 'stopped')}: {len(records)} results, {scored} scored, "
                  f"{unscored} unscored{failed}, mean {score_field} "
                  f"{'-' if mean is None else f'{mean:.3f}'}, "
                  f"{final.get('elapsed_seconds', 0):.1f} s")
    print_report(console, report, score_field=score_field)


def evaluate(
    file: Annotated[Path, typer.Argument(help="Items: .csv, .jsonl, or .json (list or "
                                              "{\"items\": [...]})")],
    rubric: Annotated[str | None, typer.Option(
        help="Rubric name (default teacher-eval-ca; see GET /rubrics)")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Write the result records here (.jsonl, .json or .csv)")] = None,
    server: Annotated[str | None, typer.Option(
        help="Submit to a running evalserve at this URL instead of grading in-process")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="API_TOKEN", help="Bearer token for --server (API_TOKEN)")] = None,
    metrics: Annotated[list[str] | None, typer.Option(
        "--metric", help="Metric to add per item with a reference (repeatable)")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(
        help="Cap on the judge's output tokens (MAX_NEW_TOKENS)")] = None,
    engine: EngineOpt = None,
    model: Annotated[str | None, typer.Option(
        help="The judge model: in-process the local model directory or .gguf file to load "
             "(MODEL_NAME); with --server one the server serves (GET /v1/models), the job's "
             "model (default the served one)")] = None,
    judge: Annotated[list[str] | None, typer.Option(
        "--judge", help="A judge of a jury, MODEL[:RUBRIC] (repeatable); an empty MODEL is "
                        "the job's model, no RUBRIC the job's rubric")] = None,
    aggregate: Annotated[str | None, typer.Option(
        help="How the jury's scores become one: mean | median | majority (default mean)")
    ] = None,
    min_successful: Annotated[int | None, typer.Option(
        help="Judges that must score an item (default every judge)")] = None,
    samples: Annotated[int | None, typer.Option(
        help="Grade each item this many times (each judge, with --judge)")] = None,
    reducer: Annotated[str | None, typer.Option(
        help="How an item's samples become one score: mean | median | mode (default mean)")
    ] = None,
    temperature: Annotated[float | None, typer.Option(
        help="The judge's temperature (> 0 with --samples; default 0.7 then)")] = None,
    human_field: Annotated[str | None, typer.Option(
        help="The item field holding the human grade (default the rubric's, human_score)")
    ] = None,
    prompt_file: Annotated[Path | None, typer.Option(
        help="Judge prompt with {question} and {answer} (seed 004), instead of --rubric")] = None,
    scale: Annotated[str, typer.Option(help="Score scale of --prompt-file, e.g. 1-5")] = "1-5",
    mlflow: Annotated[bool, typer.Option(
        "--mlflow", help="Log the evaluation as an MLflow run (MLFLOW_TRACKING_URI, default "
                         "sqlite:///DATA_DIR/mlflow.db)")] = False,
    experiment: Annotated[str | None, typer.Option(
        help="MLflow experiment of --mlflow (default evalserve)")] = None,
    run_name: Annotated[str | None, typer.Option(
        help="MLflow run name of --mlflow (default: the file's name)")] = None,
) -> None:
    """Grade every item of FILE with a rubric; show progress, write --out, print a summary."""
    from evalserve.client.http import first_token  # httpx, only when a command runs

    console = Console(highlight=False)
    items = read_records(file)
    rubric_spec, prompt_rubric, settings = _tracking_setup(rubric, prompt_file, scale, mlflow)
    options = job_options(judge, aggregate, min_successful, samples, reducer, temperature)
    if server:
        if model is not None:
            options["model"] = model
        coro = _run_remote(server, first_token(token), items, rubric_spec, metrics, console,
                           options, human_field)
    else:
        settings = load_settings(engine=engine, model_name=model, max_new_tokens=max_new_tokens)
        coro = _run_local(settings, items, rubric_spec, metrics, console, options,
                          human_field)
    final, records, rubric_info = asyncio.run(coro)
    if out is not None:
        write_records(records, out)
        console.print(f"wrote {len(records)} records to {out}")
    report = _report(final, records, rubric_info)
    _summary(console, final, records, rubric_info, report)
    if final.get("event") == "error":
        error = final.get("error") or {}
        raise EngineError(f"the job failed: {error.get('message', 'unknown error')}")
    if final.get("event") != "complete":
        raise EvalserveError(f"the job ended {final.get('event', 'without a final event')}")
    if mlflow:
        from evalserve.tracking.options import log_cli_evaluation

        run = log_cli_evaluation(
            file=file, items=items, records=records, rubric=prompt_rubric or rubric_info,
            rubric_name=rubric, elapsed_seconds=final.get("elapsed_seconds"),
            max_tokens=max_new_tokens, settings=settings, server=server,
            token=first_token(token), experiment=experiment,
            run_name=run_name, report=report, job_options=options)
        console.print(f"logged MLflow run {run.run_id} in experiment {run.experiment!r} "
                      f"at {run.tracking_uri}")


def _tracking_setup(rubric: str | None, prompt_file: Path | None, scale: str,
                    mlflow: bool) -> tuple[Any, Any, Any]:
    """`--prompt-file` as an inline rubric; `--mlflow`'s store checked before grading."""
    prompt_rubric = None
    if prompt_file is not None:
        from evalserve.tracking.options import prompt_file_rubric

        if rubric is not None:
            raise InvalidInputError("--rubric and --prompt-file both name a rubric; give one")
        prompt_rubric = prompt_file_rubric(prompt_file, scale)
    settings = None
    if mlflow:
        from evalserve.tracking.mlflow import check_tracking_uri, resolve_tracking_uri

        settings = load_settings()
        check_tracking_uri(resolve_tracking_uri(settings))
    spec = prompt_rubric.model_dump(mode="json") if prompt_rubric is not None else rubric
    return spec, prompt_rubric, settings
