"""The metrics as a service: settings applied, CPU-bound work off the event loop.

`MetricsService` is what the HTTP routes, the CLI and the job hook call. It runs the metric
functions of `evalserve.metrics` in worker threads (`asyncio.to_thread`: they are CPU or torch
bound), picks the factuality method (AlignScore when `ALIGNSCORE_CKPT` is set, else the LLM
judge of `evalserve.metrics_judge` through the engine), and passes the configured models
(`BERTSCORE_MODEL_DIR`, `ALIGNSCORE_*`, `DEVICE`). The model-based metrics load their models
on first use and keep them for the life of the process (the library caches them).

Flat per-item names used by `score_pairs` (the CLI's `--out` rows and the job records):
``rouge_l`` (ROUGE-L F1 of the prediction against the reference), ``fkgl``, ``smog``,
``dale_chall`` (readability of the prediction), ``relevance`` (BERTScore F1 of the prediction
against the reference) and ``factuality`` (prediction checked against the reference).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics._validation import check_pairs, check_texts

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.metrics import (
        CalibrationTargets,
        FactualityResult,
        LossResult,
        ReadabilityResult,
        RelevanceResult,
        RougeResult,
    )
    from evalserve.settings import Settings

__all__ = [
    "METRIC_NAMES",
    "PAIR_METRICS",
    "MetricsService",
    "PairScores",
    "Summary",
    "parse_metric_names",
    "split_lang",
    "local_service",
    "SUMMARY_INSTRUCTION",
]

log = logging.getLogger(__name__)

#: Metric names accepted by `score_pairs`, the CLI's `--metric` and a job's `metrics`.
METRIC_NAMES: tuple[str, ...] = ("rouge_l", "readability", "relevance", "factuality")
#: The metrics that compare a prediction with a reference (the others need the text only).
PAIR_METRICS: frozenset[str] = frozenset({"rouge_l", "relevance", "factuality"})
_ALIASES = {"rouge": "rouge_l", "rougel": "rouge_l", "rouge-l": "rouge_l", "bertscore": "relevance",
            "alignscore": "factuality"}

SUMMARY_INSTRUCTION = (
    "Write a plain-language summary of the text below for a reader without medical or "
    "technical training. Use short sentences and everyday words, explain any technical term "
    "you keep, keep every important fact and number, and add nothing that is not in the text. "
    "Write the summary in the same language as the text. Answer with the summary only."
)

EngineProvider = Callable[[], Awaitable["Engine"]]


def parse_metric_names(names: str | Iterable[str]) -> list[str]:
    """Canonical metric names from a list or a comma-separated string (order kept, no repeats).

    Raises:
        InvalidInputError: an unknown name (the message lists the known ones) or none at all.
    """
    raw = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for name in raw:
        if not isinstance(name, str):
            raise InvalidInputError(f"metric names must be strings, got {name!r}")
        key = name.strip().lower()
        if not key:
            continue
        key = _ALIASES.get(key, key)
        if key not in METRIC_NAMES:
            raise InvalidInputError(
                f"unknown metric {name.strip()!r}: use any of {', '.join(METRIC_NAMES)}"
            )
        if key not in out:
            out.append(key)
    if not out:
        raise InvalidInputError(f"no metric named: use any of {', '.join(METRIC_NAMES)}")
    return out


def split_lang(lang: str) -> tuple[str, str]:
    """(ROUGE language, readability language) for one `lang` option.

    ``auto`` is ROUGE's per-pair detection and English readability; ``zh...`` is Chinese ROUGE
    (readability has no Chinese formula and says so); any other code (``en``, ``es``...) is
    English ROUGE tokenization and that language's readability syllables.
    """
    if not isinstance(lang, str) or not lang.strip():
        raise InvalidInputError("`lang` must be a language code such as 'en', 'es', 'zh' or 'auto'")
    code = lang.strip()
    if code == "auto":
        return "auto", "en"
    if code.lower().startswith("zh"):
        return "zh", code
    return "en", code


@dataclass
class PairScores:
    """Flat per-item scores (`None` where a metric could not apply) and how they were made."""

    rows: list[dict[str, float | None]]
    means: dict[str, float]
    factuality_method: str | None = None
    methods: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """A generated plain-language summary."""

    summary: str
    model: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def _device(settings: Settings) -> str | None:
    return None if settings.device == "auto" else settings.device


class MetricsService:
    """Metric computations for one process, configured by `settings`.

    Args:
        settings: the service settings (models, device, generation defaults).
        engine: a coroutine function returning the ready engine; needed for the LLM-judge
            factuality (when no AlignScore checkpoint is set) and for `summarize`.
    """

    def __init__(self, settings: Settings, engine: EngineProvider | None = None) -> None:
        self.settings = settings
        self._engine = engine

    # --- configuration -----------------------------------------------------------------
    @property
    def factuality_method(self) -> str:
        """``"alignscore"`` when `ALIGNSCORE_CKPT` is set, else ``"llm_judge"``."""
        return "alignscore" if self.settings.alignscore_ckpt else "llm_judge"

    async def engine(self) -> Engine:
        """The engine, once loaded."""
        if self._engine is None:
            raise ConfigurationError(
                "no engine to run the LLM judge: set ALIGNSCORE_CKPT (and ALIGNSCORE_ROBERTA_DIR) "
                "for AlignScore factuality"
            )
        return await self._engine()

    # --- one metric each -----------------------------------------------------------------
    async def rouge(
        self,
        predictions: Sequence[str],
        references: Sequence[str],
        *,
        lang: str = "en",
        recipe: str = "standard",
        stem: bool = False,
    ) -> RougeResult:
        """ROUGE-L of each prediction against its reference (`evalserve.metrics.rouge_l`)."""
        from evalserve.metrics import rouge_l

        return await asyncio.to_thread(
            rouge_l, predictions, references, lang=lang, recipe=recipe, stem=stem  # type: ignore[arg-type]
        )

    async def readability(self, texts: Sequence[str], *, lang: str = "en") -> ReadabilityResult:
        """FKGL, SMOG and Dale-Chall of each text."""
        from evalserve.metrics import readability

        return await asyncio.to_thread(readability, texts, lang=lang)

    def _relevance_sync(
        self, originals: Sequence[str], generated: Sequence[str]
    ) -> RelevanceResult:
        from evalserve.metrics import relevance

        return relevance(
            originals,
            generated,
            model_dir=self.settings.bertscore_model_dir,
            device=_device(self.settings),
        )

    async def relevance(
        self, originals: Sequence[str], generated: Sequence[str]
    ) -> RelevanceResult:
        """BERTScore of each generated text against its original."""
        return await asyncio.to_thread(self._relevance_sync, originals, generated)

    def _alignscore_sync(
        self, originals: Sequence[str], generated: Sequence[str]
    ) -> FactualityResult:
        from evalserve.metrics import factuality

        return factuality(
            originals,
            generated,
            ckpt=self.settings.alignscore_ckpt,
            roberta_dir=self.settings.alignscore_roberta_dir,
            device=_device(self.settings),
        )

    async def factuality(
        self, originals: Sequence[str], generated: Sequence[str]
    ) -> FactualityResult:
        """Factuality in [0, 1]: AlignScore if configured, else the LLM judge (see `method`)."""
        origs, gens = check_pairs("originals", originals, "generated", generated)
        if self.factuality_method == "alignscore":
            return await asyncio.to_thread(self._alignscore_sync, origs, gens)
        from evalserve.metrics_judge import judge_factuality

        engine = await self.engine()
        return await judge_factuality(engine, origs, gens, self.settings.max_model_len)

    def _blocking_factuality(
        self, loop: asyncio.AbstractEventLoop
    ) -> Callable[[list[str], list[str]], FactualityResult]:
        """`factuality` for library code running in a worker thread while `loop` runs."""
        if self.factuality_method == "alignscore":
            return self._alignscore_sync

        def judged(originals: list[str], texts: list[str]) -> FactualityResult:
            future = asyncio.run_coroutine_threadsafe(self.factuality(originals, texts), loop)
            return future.result()

        return judged

    def _relevance_f1(self, originals: list[str], texts: list[str]) -> list[float]:
        return [s.f1 for s in self._relevance_sync(originals, texts).scores]

    # --- combined -------------------------------------------------------------------------
    def resolve_targets(
        self, humans: Sequence[str] | None, targets: Mapping[str, Any] | str | Path | None
    ) -> Mapping[str, Any] | str | Path | None:
        """Targets for `loss`: the given ones, else (without humans) `LOSS_TARGETS`."""
        if targets is not None or humans is not None:
            return targets
        if self.settings.loss_targets is not None:
            return self.settings.loss_targets
        raise InvalidInputError(
            "the loss needs human targets: send `texts_human` (one human text per original) or "
            "`targets` (the JSON written by `evalserve calibrate`), or start the server with "
            "LOSS_TARGETS=<targets.json>"
        )

    async def loss(
        self,
        originals: Sequence[str],
        humans: Sequence[str] | None,
        generated: Sequence[str],
        *,
        weights: Sequence[float] | None = None,
        targets: Mapping[str, Any] | str | Path | None = None,
        lang: str = "en",
    ) -> LossResult:
        """The seed's weighted loss, with this service's relevance and factuality."""
        from evalserve.metrics import DEFAULT_WEIGHTS, loss

        resolved = self.resolve_targets(humans, targets)
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(
            loss,
            originals,
            humans,
            generated,
            weights=DEFAULT_WEIGHTS if weights is None else weights,
            targets=resolved,  # type: ignore[arg-type]
            factuality_fn=self._blocking_factuality(loop),
            relevance_fn=self._relevance_f1,
            lang=lang,
        )

    async def calibrate(
        self,
        path: str | Path,
        *,
        save_to: str | Path | None = "targets.json",
        subset: float = 0.5,
        chunk_size: int = 16,
        progress: Callable[[int, int], Any] | None = None,
        seed: int = 0,
        lang: str = "en",
    ) -> CalibrationTargets:
        """Human targets over a training file (`evalserve.metrics.calibrate`)."""
        from evalserve.metrics import calibrate

        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(
            calibrate,
            path,
            save_to=save_to,
            subset=subset,
            chunk_size=chunk_size,
            progress=progress,
            seed=seed,
            factuality_fn=self._blocking_factuality(loop),
            relevance_fn=self._relevance_f1,
            lang=lang,
        )

    async def score_pairs(
        self,
        names: str | Iterable[str],
        predictions: Sequence[str],
        references: Sequence[str | None] | None = None,
        *,
        lang: str = "en",
        readability_lang: str | None = None,
    ) -> PairScores:
        """Flat per-item scores (module doc) for the named metrics.

        `lang` is split by `split_lang`; `readability_lang` overrides its readability part.
        Readability needs only the prediction; the pair metrics are computed for the items
        whose reference is a non-blank string and are `None` for the others.
        """
        metrics = parse_metric_names(names)
        preds = check_texts("predictions", predictions)
        refs: list[str | None] = list(references) if references is not None else [None] * len(preds)
        if len(refs) != len(preds):
            raise InvalidInputError(
                f"`predictions` has {len(preds)} texts but `references` has {len(refs)}"
            )
        rouge_lang, read_lang = split_lang(lang)
        read_lang = readability_lang or read_lang
        paired = [i for i, r in enumerate(refs) if isinstance(r, str) and r.strip()]
        p_preds = [preds[i] for i in paired]
        p_refs = [refs[i] for i in paired]  # type: ignore[misc]
        rows: list[dict[str, float | None]] = [{} for _ in preds]
        methods: dict[str, str] = {}

        def put(name: str, indices: list[int], values: Sequence[float]) -> None:
            for row in rows:
                row.setdefault(name, None)
            for i, v in zip(indices, values):
                rows[i][name] = float(v)

        if "rouge_l" in metrics:
            if paired:
                res = await self.rouge(p_preds, p_refs, lang=rouge_lang)  # type: ignore[arg-type]
                put("rouge_l", paired, [s.f1 for s in res.scores])
            else:
                put("rouge_l", [], [])
        if "readability" in metrics:
            read = await self.readability(preds, lang=read_lang)
            everyone = list(range(len(preds)))
            put("fkgl", everyone, [s.fkgl for s in read.scores])
            put("smog", everyone, [s.smog for s in read.scores])
            put("dale_chall", everyone, [s.dale_chall for s in read.scores])
        if "relevance" in metrics:
            if paired:
                rel = await self.relevance(p_refs, p_preds)  # type: ignore[arg-type]
                put("relevance", paired, [s.f1 for s in rel.scores])
            else:
                put("relevance", [], [])
        fact_method = None
        if "factuality" in metrics:
            if paired:
                fact = await self.factuality(p_refs, p_preds)  # type: ignore[arg-type]
                put("factuality", paired, fact.scores)
                fact_method = fact.method
                methods["factuality"] = fact.method
            else:
                put("factuality", [], [])
        means: dict[str, float] = {}
        for name in rows[0] if rows else {}:
            values = [r[name] for r in rows if r.get(name) is not None]
            if values:
                means[name] = sum(values) / len(values)  # type: ignore[arg-type]
        return PairScores(rows, means, fact_method, methods)

    # --- generation -----------------------------------------------------------------------
    async def summarize(
        self,
        text: str,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        repeat_penalty: float | None = None,
    ) -> Summary:
        """A plain-language summary of `text` (seed 002's `/generate`), with the seed's
        sampling settings (`MAX_NEW_TOKENS`, `TEMPERATURE`, `TOP_P`, `REPEAT_PENALTY`) unless
        overridden."""
        from evalserve.engines.base import GenerationRequest

        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("`text` is empty: send the text to summarise")
        s = self.settings
        engine = await self.engine()
        request = GenerationRequest(
            messages=[
                {"role": "system", "content": SUMMARY_INSTRUCTION},
                {"role": "user", "content": text},
            ],
            max_tokens=max_new_tokens or s.max_new_tokens,
            temperature=s.temperature if temperature is None else temperature,
            top_p=s.top_p if top_p is None else top_p,
            repetition_penalty=s.repeat_penalty if repeat_penalty is None else repeat_penalty,
        )
        result = await engine.generate(request)
        out = result.outputs[0]
        return Summary(
            summary=out.text.strip(),
            model=engine.model_id,
            finish_reason=out.finish_reason,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=out.completion_tokens,
        )


@contextlib.asynccontextmanager
async def local_service(settings: Settings) -> AsyncIterator[MetricsService]:
    """A `MetricsService` outside the server (CLI, scripts): its engine, needed only by the
    LLM-judge factuality and `summarize`, is created from `settings` and started on first use,
    and closed on exit."""
    started: list[Engine] = []
    lock = asyncio.Lock()

    async def engine() -> Engine:
        async with lock:
            if not started:
                from evalserve.engines.registry import create_engine

                eng = create_engine(settings)
                await eng.start()
                started.append(eng)
            return started[0]

    try:
        yield MetricsService(settings, engine=engine)
    finally:
        for eng in started:
            await eng.close()
