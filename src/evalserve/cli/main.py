"""`evalserve` entry point: one Typer app, one module per command."""

from __future__ import annotations

import logging

import typer

from evalserve.cli import agree as agree_cmd
from evalserve.cli import bench, download, generate, serve
from evalserve.cli import calibrate as calibrate_cmd
from evalserve.cli import evaluate as evaluate_cmd
from evalserve.cli import metrics as metrics_cmd
from evalserve.cli.errors import run_cli

__all__ = ["app", "main"]

app = typer.Typer(
    name="evalserve",
    help="Self-hosted text evaluation: LLM-as-a-judge, metrics and an OpenAI-compatible API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("generate")(generate.generate)
app.command("models")(generate.models)
app.command("metrics")(metrics_cmd.metrics)
app.command("calibrate")(calibrate_cmd.calibrate)
app.command("download")(download.download)
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("agree")(agree_cmd.agree)
app.add_typer(bench.bench_app, name="bench")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_cli(app)
