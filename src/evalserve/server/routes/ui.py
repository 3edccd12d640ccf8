"""`GET /ui`: the dashboard (jobs, a job's scores, agreement, pairwise/jury, service), and
`GET /ui/service.json`, the engine facts its Service page shows.

The page holds no data; everything it shows comes from the API with the caller's token, so it
is served without auth like the health routes. It is one HTML document: `static/index.html`
with its stylesheet, its scripts (`static/js/`) and the vendored libraries (`static/vendor/`,
reproduced by `scripts/vendor_js.sh`) inlined where it names them (`/*inline:PATH*/`), so it
loads from the one open path, needs no build step and nothing from the network.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from evalserve.server.deps import SettingsDep, StateDep

__all__ = ["router", "page"]

router = APIRouter(tags=["ui"])

_INLINE = re.compile(r"/\*inline:([\w./-]+)\*/")


def _static(path: str) -> str:
    if ".." in path.split("/"):
        raise ValueError(f"static path {path!r} leaves static/")
    return files("evalserve.server").joinpath("static", path).read_text(encoding="utf-8")


@cache
def page() -> str:
    """The dashboard's HTML with every `/*inline:PATH*/` replaced by the file at
    `static/PATH`. A `</` in a script is written `<\\/` so it cannot close the script."""
    return _INLINE.sub(lambda m: _static(m.group(1)).replace("</", "<\\/"),
                       _static("index.html"))


@router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(page(), headers={"Cache-Control": "no-cache"})


@router.get("/ui/service.json", include_in_schema=False)
async def service(state: StateDep, settings: SettingsDep) -> dict[str, Any]:
    """The engine kind and model the Service page names, and the token budget it runs with
    (behind auth, like every route but the open ones)."""
    return {"engine": settings.engine, "model": state.engine.model_id,
            "max_new_tokens": settings.max_new_tokens}
