"""`GET /ui`: a one-page dashboard (submit items, list jobs, follow a job's stream).

The page holds no data; everything it shows comes from the API with the token typed into it,
so it is served without auth like the health routes.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["ui"])


@cache
def _page() -> str:
    return files("evalserve.server").joinpath("static/index.html").read_text(encoding="utf-8")


@router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_page())
