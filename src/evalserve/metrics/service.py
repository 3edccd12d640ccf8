"""The metrics as a service: settings applied, CPU-bound work off the event loop.

`MetricsService` is what the HTTP routes, the CLI and the job hook call. It runs the metric
functions of `evalserve.metrics` in worker threads (`asyncio.to_thread`: they are CPU or torch
bound), picks the factuality method (AlignScore when `ALIGNSCORE_CKPT` is set, else the LLM
judge it is given, `evalserve.judge.factuality`), and passes the configured models
(`BERTSCORE_MODEL_DIR`, `ALIGNSCORE_*`, `DEVICE`). The model-based metrics load their models
on first use and keep them for the life of the process (the library caches them).

`score_pairs` gives the flat per-item names of `evalserve.metrics.names`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics._validation import check_pairs, check_texts
from evalserve.metrics.names import parse_metric_names, split_lang

if TYPE_CHECKING:
    from evalserve.metrics import (
        CalibrationTargets,
        FactualityResult,
        LossResult,
        ReadabilityResult,
        RelevanceResult,
        RougeResult,
    )
    from evalserve.settings import Settings

__all__ = ["FactualityJudgeFn", "MetricsService", "PairScores"]

log = logging.getLogger(__name__)

#: The LLM-judge factuality a `MetricsService` is given: (originals, generated) -> result.
FactualityJudgeFn = Callable[[Sequence[str], Sequence[str]], Awaitable["FactualityResult"]]


@dataclass
class PairScores:
    """Flat per-item scores (`None` where a metric could not apply) and how they were made."""

    rows: list[dict[str, float | None]]
    means: dict[str, float]
    factuality_method: str | None = None
    methods: dict[str, str] = field(default_factory=dict)


def _device(settings: Settings) -> str | None:
    return None if settings.device == "auto" else settings.device


class MetricsService:
    """Metric computations for one process, configured by `settings`.

    Args:
        settings: the service settings (models, device).
        factuality_judge: the LLM-judge factuality, used when no AlignScore checkpoint is
            set: ``await factuality_judge(originals, generated)`` gives a
            `FactualityResult` (`evalserve.judge.factuality.FactualityJudge`; the
            server and the CLI build this service with
            `evalserve.judge.factuality.build_metrics_service`).
    """

    def __init__(
        self, settings: Settings, *, factuality_judge: FactualityJudgeFn | None = None
    ) -> None:
        self.settings = settings
        self._factuality_judge = factuality_judge

    # --- configuration -----------------------------------------------------------------
    @property
    def factuality_method(self) -> str:
        """``"alignscore"`` when `ALIGNSCORE_CKPT` is set, else ``"llm_judge"``."""
        return "alignscore" if self.settings.alignscore_ckpt else "llm_judge"

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
        if self._factuality_judge is None:
            raise ConfigurationError(
                "no engine to run the LLM judge: set ALIGNSCORE_CKPT (and ALIGNSCORE_ROBERTA_DIR) "
                "for AlignScore factuality"
            )
        return await self._factuality_judge(origs, gens)

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
