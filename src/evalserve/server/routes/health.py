"""Health routes: seed 000's `/health` and seed 002's `/healthz`. Never behind auth."""

from __future__ import annotations

import dataclasses
import time

from fastapi import APIRouter

from evalserve.engines.router import RouterHealth
from evalserve.server.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(state: StateDep) -> dict:
    """Seed 000 shape: status, model_loaded, gpu_available, active_jobs; with
    `UPSTREAMS_FILE`, also `upstreams`: every routed endpoint, in rotation or out."""
    info = await state.engine.health() if state.loaded else None
    body = {
        "status": "healthy" if state.loaded else ("error" if state.engine_error else "loading"),
        "model_loaded": bool(info and info.loaded),
        "gpu_available": bool(info and info.gpu_available),
        "active_jobs": state.components.active_jobs,
        "model": state.engine.model_id,
        "timestamp": time.time(),
    }
    if isinstance(info, RouterHealth):
        body["upstreams"] = [dataclasses.asdict(e) for e in info.endpoints]
    return body


@router.get("/healthz")
async def healthz(state: StateDep) -> dict:
    """Seed 002 liveness: answers as soon as the process runs."""
    return {"status": "ok", "model_loaded": state.loaded}
