"""Seed 002's metric service: `POST /metrics/{rouge,relevance,factuality,readability}`,
`POST /loss` and `POST /generate`. Thin: validate, call `MetricsService` (or
`evalserve.generation.summary.summarize`), shape the answer.

Each metrics request holds at most `MAX_TEXTS_PER_REQUEST` texts (pairs count once) and is
charged its texts against `TEXT_RATE_LIMIT`; `/generate` is charged one prompt against
`PREDICT_RATE_LIMIT`, like `/predict`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from evalserve.engines.base import GenerationRequest
from evalserve.generation.summary import summarize
from evalserve.metrics.service import MetricsService
from evalserve.server.costs import charge_predict, charge_texts, check_max_tokens
from evalserve.server.deps import CallerDep, StateDep
from evalserve.server.protocol.metrics import (
    PRF,
    FactualityResponse,
    GenerateRequest,
    GenerateResponse,
    LossRequest,
    LossResponse,
    PairRequest,
    PromptGenerateResponse,
    ReadabilityMean,
    ReadabilityRequest,
    ReadabilityResponse,
    RelevanceResponse,
    RougeRequest,
    RougeResponse,
    TargetStat,
    Usage,
)
from evalserve.server.state import require

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


async def metrics_service(state: StateDep) -> MetricsService:
    """The app's `MetricsService`, built once by the lifespan (`server/components.py`) and
    shared with the jobs' metrics hook (it waits for the engine itself)."""
    return require(state.components.metrics, "metrics service")


ServiceDep = Annotated[MetricsService, Depends(metrics_service)]


def _prf(scores: list) -> dict[str, list[float]]:
    return {
        "precision": [s.precision for s in scores],
        "recall": [s.recall for s in scores],
        "f1": [s.f1 for s in scores],
    }


@router.post("/metrics/rouge")
async def rouge(body: RougeRequest, service: ServiceDep, request: Request) -> RougeResponse:
    """ROUGE-L of each prediction against its reference."""
    assert body.predictions is not None and body.references is not None
    await charge_texts(request, len(body.predictions))
    res = await service.rouge(
        body.predictions, body.references, lang=body.lang, recipe=body.recipe, stem=body.stem
    )
    return RougeResponse(
        **_prf(res.scores),
        mean=PRF(precision=res.mean.precision, recall=res.mean.recall, f1=res.mean.f1),
        languages=res.languages,
        lang=body.lang,
        recipe=body.recipe,
    )


@router.post("/metrics/relevance")
async def relevance(body: PairRequest, service: ServiceDep,
                    request: Request) -> RelevanceResponse:
    """BERTScore of each generated text against its original."""
    await charge_texts(request, len(body.texts_original))
    res = await service.relevance(body.texts_original, body.texts_generated)
    return RelevanceResponse(
        **_prf(res.scores),
        mean=PRF(precision=res.mean.precision, recall=res.mean.recall, f1=res.mean.f1),
    )


@router.post("/metrics/factuality")
async def factuality(body: PairRequest, service: ServiceDep,
                     request: Request) -> FactualityResponse:
    """Factuality in [0, 1]: AlignScore when configured, else the LLM judge."""
    await charge_texts(request, len(body.texts_original))
    res = await service.factuality(body.texts_original, body.texts_generated)
    return FactualityResponse(scores=res.scores, mean=res.mean, method=res.method)


@router.post("/metrics/readability")
async def readability(body: ReadabilityRequest, service: ServiceDep,
                      request: Request) -> ReadabilityResponse:
    """FKGL, SMOG and Dale-Chall of each text (lower is simpler)."""
    await charge_texts(request, len(body.texts))
    res = await service.readability(body.texts, lang=body.lang)
    return ReadabilityResponse(
        fkgl=[s.fkgl for s in res.scores],
        smog=[s.smog for s in res.scores],
        dale_chall=[s.dale_chall for s in res.scores],
        mean=ReadabilityMean(
            fkgl=res.mean.fkgl, smog=res.mean.smog, dale_chall=res.mean.dale_chall
        ),
        lang=body.lang,
    )


@router.post("/loss")
async def loss(body: LossRequest, service: ServiceDep, request: Request) -> LossResponse:
    """Seed 002's weighted loss of the generated texts against human targets."""
    await charge_texts(request, len(body.texts_original))
    res = await service.loss(
        body.texts_original,
        body.texts_human,
        body.texts_generated,
        weights=body.weights,
        targets=body.targets,
        lang=body.lang,
    )
    targets = res.targets.to_dict()
    return LossResponse(
        loss=res.loss,
        losses=res.losses,
        terms=res.terms,
        metrics=res.metrics,
        targets={m: TargetStat(**targets[m]) for m in res.terms},
        weights=dict(zip(res.terms, res.weights)),
        factuality_method=res.factuality_method,
    )


@router.post("/generate")
async def generate(
    body: GenerateRequest, state: StateDep, caller: CallerDep
) -> GenerateResponse | PromptGenerateResponse:
    """Seed 002: a plain-language summary of `text`. With `prompt` instead (vLLM's legacy
    `/generate`, seed 004): the prompt completed as raw text, `{"text": [prompt + output]}`."""
    check_max_tokens(state.settings, body.max_tokens, "max_tokens")
    check_max_tokens(state.settings, body.max_new_tokens, "max_new_tokens")
    engine = await state.wait_engine()
    await charge_predict(state, caller, 1)
    if body.prompt is not None:
        settings = state.settings
        result = await engine.generate(GenerationRequest(
            prompt=body.prompt,
            max_tokens=body.max_tokens or body.max_new_tokens or settings.max_new_tokens,
            temperature=settings.temperature if body.temperature is None else body.temperature,
            top_p=body.top_p or settings.top_p,
            repetition_penalty=body.repeat_penalty or 1.0,
        ))
        return PromptGenerateResponse(text=[body.prompt + result.text])
    assert body.text is not None
    res = await summarize(
        engine,
        state.settings,
        body.text,
        max_new_tokens=body.max_new_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        repeat_penalty=body.repeat_penalty,
    )
    return GenerateResponse(
        summary=res.summary,
        generated_text=res.summary,
        model=res.model,
        finish_reason=res.finish_reason,
        usage=Usage(prompt_tokens=res.prompt_tokens, completion_tokens=res.completion_tokens),
    )
