"""`evalserve bench predict`: time the `/predict` contract and score it like the graders do.

Sends every prompt of a JSONL file (`{"prompt", "answer"}` per line) to a running server
(`--url`) or, without `--url`, to an in-process engine through the same library function the
route uses (`evalserve.generation.predict.predict`). Prints throughput and ROUGE-L with both
recipes of `evalserve.metrics.rouge`: the organisers' (`recipe="grader"`, the leaderboard
number) and the correct jieba-token ROUGE-L (`recipe="standard"`). The work itself is
`evalserve.generation.bench`; this module is the command.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from evalserve.cli.engine import loaded_engine
from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.generation import bench
from evalserve.settings import Settings, load_settings

__all__ = ["bench_app", "bench_predict"]

bench_app = typer.Typer(help="Measure throughput and accuracy.", no_args_is_help=True)


async def run_http(url: str, prompts: Sequence[str], *, batch: bool, concurrency: int,
                   token: str | None, wait_s: float, timeout_s: float) -> bench.RunResult:
    """Send `prompts` to a running server's `POST /predict`, once it answers `GET /`."""
    from evalserve.client.predict import PredictClient

    async with PredictClient(url, token, timeout=timeout_s,
                             max_connections=concurrency) as client:
        status = await client.wait_ready(wait_s)
        if batch and status != "batch":
            raise ConfigurationError(
                f"{client.url} is not in batch mode (GET / says {status!r}): start it with "
                "BATCH_MODE=1, or drop --batch"
            )
        run = await bench.run_prompts(prompts, one=client.predict,
                                      batch=client.predict_batch if batch else None,
                                      concurrency=concurrency)
    run.info["status"] = status
    return run


async def run_inprocess(settings: Settings, prompts: Sequence[str], *, batch: bool,
                        concurrency: int, console: Console) -> tuple[bench.RunResult, Any]:
    """Start the configured engine here and answer through `evalserve.generation.predict`.
    Returns the result and the (closed) engine, whose tokenizer can still count tokens."""
    from evalserve.generation.predict import PredictOptions

    async with loaded_engine(settings, console) as engine:
        run = await bench.run_engine(engine, prompts, PredictOptions.from_settings(settings),
                                     batch=batch, concurrency=concurrency)
    return run, engine


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"bench predict ({summary['mode']})", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("items / HTTP requests", f"{summary['items']} / {summary['requests']}")
    table.add_row("wall time", f"{summary['wall_s']:.2f} s")
    table.add_row("answers/s", f"{summary['answers_per_s']:.2f}")
    table.add_row("requests/s", f"{summary['requests_per_s']:.2f}")
    table.add_row("output tokens", f"{summary['output_tokens']} ({summary['token_counter']})")
    table.add_row("output tokens/s", f"{summary['tokens_per_s']:.1f}")
    for key, label in (("rouge_l", f"ROUGE-L F1, jieba tokens ({summary['rouge_l']['lang']})"),
                       ("rouge_l_grader", "ROUGE-L F1, organisers' recipe")):
        d = summary[key]
        table.add_row(label, f"mean {d['mean']:.4f}")
        table.add_row("  p10 / median / p90", f"{d['p10']:.3f} / {d['p50']:.3f} / {d['p90']:.3f}")
        table.add_row(f"  share >= {bench.GRADER_THRESHOLD}", f"{d['at_least_threshold']:.0%}")
        table.add_row("  histogram (0-0.2 … 0.8-1)",
                      " / ".join(str(v) for v in d["histogram"].values()))
    verdict = "passes" if summary["rouge_l_grader"]["passes"] else "FAILS"
    table.add_row("leaderboard threshold", f"{verdict} (mean >= {bench.GRADER_THRESHOLD})")
    return table


@bench_app.command("predict")
def bench_predict(
    data: Annotated[Path, typer.Argument(help="JSONL file of {\"prompt\", \"answer\"} lines")],
    url: Annotated[str | None, typer.Option(help="Running server; omit to run in-process")] = None,
    batch: Annotated[bool, typer.Option("--batch", help="Send all prompts in one request")]
    = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Single requests in flight")] = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="Use only the first N items")] = None,
    out: Annotated[Path | None, typer.Option(help="Write per-item results as JSONL")] = None,
    lang: Annotated[str, typer.Option(help="auto | zh | en: tokens of the standard ROUGE-L")]
    = "auto",
    tokenizer: Annotated[
        str | None,
        typer.Option(help="Count output tokens with this HF tokenizer folder, or `estimate`; "
                          "default: the tokenizer of the locally configured model"),
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="EVALSERVE_TOKEN",
                                              help="Bearer token for --url")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for GET / to answer 200")] = 300,
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request")] = 900,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Send every prompt to /predict, then print throughput and ROUGE-L (both recipes)."""
    if batch and concurrency != 1:
        raise InvalidInputError("--batch and --concurrency exclude each other: pick one")
    if lang not in ("auto", "zh", "en"):
        raise InvalidInputError(f"--lang {lang!r}: use auto, zh or en")
    settings = load_settings()
    items = bench.read_qa(data, limit)
    prompts = [item.prompt for item in items]
    console = Console(stderr=True, highlight=False)
    mode = "batch" if batch else f"concurrency {concurrency}"

    if url:
        count, counter = bench.token_counter(settings, tokenizer)
        with console.status(f"sending {len(prompts)} prompts to {url} ({mode})..."):
            run = asyncio.run(run_http(url, prompts, batch=batch, concurrency=concurrency,
                                       token=token, wait_s=wait, timeout_s=timeout))
        mode = f"{url}, {mode}"
    else:
        run, engine = asyncio.run(run_inprocess(settings, prompts, batch=batch,
                                                concurrency=concurrency, console=console))
        if tokenizer:
            count, counter = bench.token_counter(settings, tokenizer)
        else:
            count, counter = engine.count_tokens, f"tokenizer of {engine.model_id}"
        mode = f"in-process, {mode}"

    tokens = [count(a) if a else 0 for a in run.answers]
    standard, grader = bench.score(items, run.answers, lang)
    summary = bench.summarize(run, tokens, standard, grader, mode=mode, counter=counter,
                              lang=lang)
    if out:
        with out.open("w", encoding="utf-8") as fh:
            for i, (item, answer) in enumerate(zip(items, run.answers)):
                row = {"index": i, "prompt": item.prompt, "answer": item.answer,
                       "prediction": answer, "tokens": tokens[i], "rouge_l": standard[i],
                       "rouge_l_grader": grader[i]}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if json_out:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        Console(highlight=False).print(_table(summary))
