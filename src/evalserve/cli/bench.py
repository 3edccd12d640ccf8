"""`evalserve bench predict`: time the `/predict` contract and score it like the graders do.

Sends every prompt of a JSONL file (`{"prompt", "answer"}` per line) to a running server
(`--url`) or, without `--url`, to an in-process engine through the same library function the
route uses (`evalserve.generation.predict.predict`). Prints throughput and ROUGE-L with both
recipes of `evalserve.metrics.rouge`: the organisers' (`recipe="grader"`, the leaderboard
number) and the correct jieba-token ROUGE-L (`recipe="standard"`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from evalserve.errors import ConfigurationError, InvalidInputError, UpstreamError
from evalserve.settings import Settings, load_settings

__all__ = ["bench_app", "bench_predict", "QAItem", "read_qa", "token_counter", "estimate_tokens",
           "GRADER_THRESHOLD"]

bench_app = typer.Typer(help="Measure throughput and accuracy.", no_args_is_help=True)

#: The organisers' pass mark on their ROUGE-L (seed 003).
GRADER_THRESHOLD = 0.35

_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")


@dataclass(frozen=True)
class QAItem:
    """One benchmark question and its reference answer."""

    prompt: str
    answer: str


def read_qa(path: Path, limit: int | None = None) -> list[QAItem]:
    """`{"prompt", "answer"}` lines of a JSONL file (blank lines skipped)."""
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist: pass a JSONL file of prompt/answer lines")
    items: list[QAItem] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if limit is not None and len(items) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number} is not JSON: {exc.msg}") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) \
                    or not isinstance(row.get("answer"), str):
                raise InvalidInputError(
                    f'{path}:{number} needs string fields "prompt" and "answer"'
                )
            items.append(QAItem(row["prompt"], row["answer"]))
    if not items:
        raise InvalidInputError(f"{path} holds no prompt/answer lines")
    return items


# ----------------------------------------------------------------------------- token counting


def estimate_tokens(text: str) -> int:
    """Tokenizer-free estimate: one token per CJK character, plus one per 4 characters
    (rounded up) of each remaining whitespace-separated word."""
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text)
    return cjk + sum(math.ceil(len(word) / 4) for word in rest.split())


def _tokenizer_path(settings: Settings) -> tuple[Any, str | None]:
    """(folder, gguf file name or None) of the locally configured model's tokenizer."""
    from evalserve.engines.weights import loader

    source = loader.resolve_model_source(settings.model_name, settings.model_dir,
                                         settings.model_id)
    if not source.gguf:
        return source.path, None
    cache_root = settings.model_cache_dir or settings.data_dir / "models"
    # The engine's converted copy loads in 0.1 s; the GGUF itself takes ~10 s to parse.
    converted = loader._converted_dir(source, cache_root)
    if (converted / "tokenizer_config.json").exists():
        return converted, None
    return source.path.parent, source.path.name


def token_counter(settings: Settings, tokenizer: str | None = None
                  ) -> tuple[Callable[[str], int], str]:
    """`(count, description)`: tokens of a text by `tokenizer` (a local Hugging Face folder,
    `estimate`, or None: the tokenizer of the model these settings serve)."""
    if tokenizer == "estimate":
        return estimate_tokens, "estimate (1 per CJK char + 1 per 4 chars of other words)"
    if tokenizer:
        folder, gguf = Path(tokenizer), None
        name = folder.name
    else:
        folder, gguf = _tokenizer_path(settings)
        from evalserve.engines.weights.loader import resolve_model_source

        name = resolve_model_source(settings.model_name, settings.model_dir,
                                    settings.model_id).model_id
    if gguf is None and (Path(folder) / "tokenizer.json").is_file():
        # The tokenizers library alone: no torch/transformers import (seconds) for counting.
        from tokenizers import Tokenizer

        fast = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))

        def count_fast(text: str) -> int:
            return len(fast.encode(text, add_special_tokens=False).ids)

        return count_fast, f"tokenizer of {name}"
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot load a tokenizer from {folder}: {exc}; pass --tokenizer DIR or "
            "--tokenizer estimate"
        ) from None

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    return count, f"tokenizer of {name}"


# ----------------------------------------------------------------------------- runners


@dataclass
class RunResult:
    """Answers in prompt order and the wall time spent getting them."""

    answers: list[str]
    wall_s: float
    requests: int
    info: dict[str, Any] = field(default_factory=dict)


def _check(resp: Any, expected: int | None) -> Any:
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300]
        raise UpstreamError(f"POST /predict answered {resp.status_code}: {message}")
    body = resp.json().get("response")
    if expected is not None and (not isinstance(body, list) or len(body) != expected):
        got = len(body) if isinstance(body, list) else type(body).__name__
        raise UpstreamError(f"POST /predict returned {got} answers for {expected} prompts")
    return body


async def _wait_ready(client: Any, url: str, wait_s: float) -> str:
    """Poll `GET /` like a grader until it answers 200; returns its status."""
    import httpx

    deadline = time.monotonic() + wait_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            resp = await client.get(url + "/", timeout=5)
            if resp.status_code == 200:
                return str(resp.json().get("status"))
            last = f"{resp.status_code} {resp.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        await asyncio.sleep(0.5)
    raise UpstreamError(f"{url}/ was not ready within {wait_s:.0f} s (last: {last})")


async def run_http(url: str, prompts: Sequence[str], *, batch: bool, concurrency: int,
                   token: str | None, wait_s: float, timeout_s: float) -> RunResult:
    """Send `prompts` to a running server's `POST /predict`."""
    import httpx

    url = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=max(concurrency, 1))
    async with httpx.AsyncClient(headers=headers, timeout=timeout_s, limits=limits) as client:
        status = await _wait_ready(client, url, wait_s)
        if batch and status != "batch":
            raise ConfigurationError(
                f"{url} is not in batch mode (GET / says {status!r}): start it with "
                "BATCH_MODE=1, or drop --batch"
            )
        started = time.perf_counter()
        if batch:
            resp = await client.post(url + "/predict", json={"prompt": list(prompts)})
            answers = list(_check(resp, len(prompts)))
            requests = 1
        else:
            gate = asyncio.Semaphore(concurrency)

            async def one(prompt: str) -> str:
                async with gate:
                    resp = await client.post(url + "/predict", json={"prompt": prompt})
                    return str(_check(resp, None))

            answers = list(await asyncio.gather(*(one(p) for p in prompts)))
            requests = len(prompts)
        return RunResult(answers, time.perf_counter() - started, requests, {"status": status})


async def run_inprocess(settings: Settings, prompts: Sequence[str], *, batch: bool,
                        concurrency: int, console: Console) -> tuple[RunResult, Any]:
    """Build the configured engine here and answer through `evalserve.generation.predict.predict`.
    Returns the result and the (closed) engine, whose tokenizer can still count tokens."""
    from evalserve.engines.registry import create_engine
    from evalserve.generation.predict import PredictOptions, predict

    engine = create_engine(settings)
    with console.status("loading model..."):
        await engine.start()
    try:
        options = PredictOptions.from_settings(settings)
        started = time.perf_counter()
        if batch:
            answers = await predict(engine, prompts, options)
            requests = 1
        else:
            gate = asyncio.Semaphore(concurrency)

            async def one(prompt: str) -> str:
                async with gate:
                    return (await predict(engine, [prompt], options))[0]

            answers = list(await asyncio.gather(*(one(p) for p in prompts)))
            requests = len(prompts)
        return RunResult(answers, time.perf_counter() - started, requests), engine
    finally:
        await engine.close()


# ----------------------------------------------------------------------------- report


def _distribution(values: list[float]) -> dict[str, Any]:
    qs = statistics.quantiles(values, n=10, method="inclusive") if len(values) > 1 \
        else [values[0]] * 9
    edges = [0.0, 0.2, 0.4, 0.6, 0.8]
    hist = [sum(1 for v in values if lo <= v < lo + 0.2 or (lo == 0.8 and v >= 1.0))
            for lo in edges]
    return {
        "mean": statistics.fmean(values),
        "p10": qs[0], "p50": qs[4], "p90": qs[8],
        "at_least_threshold": sum(1 for v in values if v >= GRADER_THRESHOLD) / len(values),
        "histogram": dict(zip(["0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1"], hist)),
    }


def score(items: Sequence[QAItem], answers: Sequence[str], lang: str
          ) -> tuple[list[float], list[float]]:
    """Per-item ROUGE-L F1: (standard recipe for `lang`, the organisers' grader recipe)."""
    from evalserve.metrics.rouge import rouge_l

    refs = [item.answer for item in items]
    standard = rouge_l(answers, refs, lang=lang, recipe="standard")  # type: ignore[arg-type]
    grader = rouge_l(answers, refs, recipe="grader")
    return [s.f1 for s in standard.scores], [s.f1 for s in grader.scores]


def summarize(run: RunResult, tokens: list[int], standard: list[float], grader: list[float],
              *, mode: str, counter: str, lang: str) -> dict[str, Any]:
    """The machine-readable summary printed by `--json`."""
    total = sum(tokens)
    return {
        "mode": mode,
        "items": len(run.answers),
        "requests": run.requests,
        "wall_s": run.wall_s,
        "answers_per_s": len(run.answers) / run.wall_s if run.wall_s else 0.0,
        "requests_per_s": run.requests / run.wall_s if run.wall_s else 0.0,
        "output_tokens": total,
        "tokens_per_s": total / run.wall_s if run.wall_s else 0.0,
        "token_counter": counter,
        "rouge_l": {"lang": lang, **_distribution(standard)},
        "rouge_l_grader": {
            "threshold": GRADER_THRESHOLD,
            "passes": statistics.fmean(grader) >= GRADER_THRESHOLD,
            **_distribution(grader),
        },
    }


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
        table.add_row(f"  share >= {GRADER_THRESHOLD}", f"{d['at_least_threshold']:.0%}")
        table.add_row("  histogram (0-0.2 … 0.8-1)",
                      " / ".join(str(v) for v in d["histogram"].values()))
    verdict = "passes" if summary["rouge_l_grader"]["passes"] else "FAILS"
    table.add_row("leaderboard threshold", f"{verdict} (mean >= {GRADER_THRESHOLD})")
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
    items = read_qa(data, limit)
    prompts = [item.prompt for item in items]
    console = Console(stderr=True, highlight=False)
    mode = "batch" if batch else f"concurrency {concurrency}"

    if url:
        count, counter = token_counter(settings, tokenizer)
        with console.status(f"sending {len(prompts)} prompts to {url} ({mode})..."):
            run = asyncio.run(run_http(url, prompts, batch=batch, concurrency=concurrency,
                                       token=token, wait_s=wait, timeout_s=timeout))
        mode = f"{url}, {mode}"
    else:
        run, engine = asyncio.run(run_inprocess(settings, prompts, batch=batch,
                                                concurrency=concurrency, console=console))
        if tokenizer:
            count, counter = token_counter(settings, tokenizer)
        else:
            count, counter = engine.count_tokens, f"tokenizer of {engine.model_id}"
        mode = f"in-process, {mode}"

    tokens = [count(a) if a else 0 for a in run.answers]
    standard, grader = score(items, run.answers, lang)
    summary = summarize(run, tokens, standard, grader, mode=mode, counter=counter, lang=lang)
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
