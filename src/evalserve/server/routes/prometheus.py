"""`GET /metrics`: the app's Prometheus exposition (behind auth when API_TOKEN is set; the
`METRICS_PORT` server never is)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from evalserve.server.deps import StateDep
from evalserve.server.state import require

__all__ = ["router"]

router = APIRouter(tags=["telemetry"])


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    """Prometheus exposition of every metric in the app's registry."""
    from prometheus_client import CONTENT_TYPE_LATEST

    telemetry = require(state.components.telemetry, "telemetry")
    return Response(telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
