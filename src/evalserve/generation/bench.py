"""The `/predict` benchmark as a library: answer sets, timed runs, token counts, ROUGE-L.

Read prompt/answer sets, run prompts (through any async answerer: an engine via
`evalserve.generation.predict`, or a server), count output tokens, and score answers with
ROUGE-L in both recipes of `evalserve.metrics.rouge`: the organisers' (`recipe="grader"`, the
leaderboard number) and the correct jieba-token ROUGE-L (`recipe="standard"`).
`evalserve bench predict` is the command around it.
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.records import read_records

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.generation.predict import PredictOptions
    from evalserve.settings import Settings

__all__ = [
    "GRADER_THRESHOLD",
    "QAItem",
    "RunResult",
    "estimate_tokens",
    "read_qa",
    "run_engine",
    "run_prompts",
    "score",
    "summarize",
    "token_counter",
]

#: The organisers' pass mark on their ROUGE-L (seed 003).
GRADER_THRESHOLD = 0.35

_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")


@dataclass(frozen=True)
class QAItem:
    """One benchmark question and its reference answer."""

    prompt: str
    answer: str


def read_qa(path: Path, limit: int | None = None) -> list[QAItem]:
    """The `{"prompt", "answer"}` rows of a JSONL (or CSV, JSON) file, the first `limit`."""
    rows = read_records(path)
    items: list[QAItem] = []
    for number, row in enumerate(rows[:limit] if limit is not None else rows, 1):
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("answer"), str):
            raise InvalidInputError(
                f'{path}: item {number} needs string fields "prompt" and "answer"'
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


def _tokenizer_path(settings: Settings) -> tuple[Any, str | None, str]:
    """(folder, gguf file name or None, model id) of the locally configured model's
    tokenizer."""
    from evalserve.engines.weights import loader

    source = loader.resolve_model_source(settings.model_name, settings.model_dir,
                                         settings.model_id)
    if not source.gguf:
        return source.path, None, source.model_id
    cache_root = settings.model_cache_dir or settings.data_dir / "models"
    # The engine's converted copy loads in 0.1 s; the GGUF itself takes ~10 s to parse.
    converted = loader.converted_dir(source, cache_root)
    if (converted / "tokenizer_config.json").exists():
        return converted, None, source.model_id
    return source.path.parent, source.path.name, source.model_id


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
        folder, gguf, name = _tokenizer_path(settings)
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


async def run_prompts(prompts: Sequence[str], *, one: Callable[[str], Awaitable[str]],
                      batch: Callable[[Sequence[str]], Awaitable[list[str]]] | None = None,
                      concurrency: int = 1) -> RunResult:
    """Answer `prompts` and time it: all in one `batch` call when given, else one `one` call
    per prompt with at most `concurrency` in flight."""
    started = time.perf_counter()
    if batch is not None:
        answers = list(await batch(prompts))
        requests = 1
    else:
        gate = asyncio.Semaphore(concurrency)

        async def answer(prompt: str) -> str:
            async with gate:
                return await one(prompt)

        answers = list(await asyncio.gather(*(answer(p) for p in prompts)))
        requests = len(prompts)
    return RunResult(answers, time.perf_counter() - started, requests)


async def run_engine(engine: Engine, prompts: Sequence[str], options: PredictOptions, *,
                     batch: bool, concurrency: int) -> RunResult:
    """Answer `prompts` on a started engine through `evalserve.generation.predict.predict`,
    the library function behind `POST /predict`."""
    from evalserve.generation.predict import predict

    async def one(prompt: str) -> str:
        return (await predict(engine, [prompt], options))[0]

    async def all_at_once(batch_prompts: Sequence[str]) -> list[str]:
        return list(await predict(engine, batch_prompts, options))

    return await run_prompts(prompts, one=one, batch=all_at_once if batch else None,
                             concurrency=concurrency)


# ----------------------------------------------------------------------------- scores


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
    """The machine-readable summary (`evalserve bench predict --json`)."""
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
