"""Seed 003's grader contract: `GET /` (readiness, open without a token) and `POST /predict`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from evalserve.generation.predict import PredictOptions, check_prompts, predict
from evalserve.redact import redact_text
from evalserve.server.costs import charge_predict
from evalserve.server.deps import CallerDep, EngineDep, StateDep
from evalserve.server.protocol.predict import PredictRequest, PredictResponse, ServiceStatus
from evalserve.server.warmup import is_warm

__all__ = ["router"]

router = APIRouter(tags=["predict"])


@router.get("/", response_model=ServiceStatus, responses={503: {"model": ServiceStatus}})
async def root(state: StateDep) -> JSONResponse:
    """`{"status": "ok"|"batch"}` once the model is loaded and warmed up; 503 before."""
    if state.engine_error is not None:
        body = ServiceStatus(status="error", message=f"the model failed to load: "
                                                     f"{redact_text(str(state.engine_error))}")
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    if not state.loaded or not is_warm(state):
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "batch" if state.settings.batch_mode else "ok"})


@router.post("/predict", response_model=PredictResponse)
async def predict_route(body: PredictRequest, state: StateDep, engine: EngineDep,
                        caller: CallerDep) -> dict:
    """Answer one prompt, or (BATCH_MODE=1) a list of at most `MAX_PREDICT_PROMPTS`
    prompts generated as one batch; each prompt counts against `PREDICT_RATE_LIMIT`."""
    settings = state.settings
    prompts = check_prompts(body.prompt, batch_mode=settings.batch_mode,
                            max_chars=settings.max_field_chars,
                            max_prompts=settings.max_predict_prompts)
    await charge_predict(state, caller, len(prompts))
    answers = await predict(engine, prompts, PredictOptions.from_settings(settings))
    return {"response": answers if isinstance(body.prompt, list) else answers[0]}
