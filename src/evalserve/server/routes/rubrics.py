"""`GET /rubrics` (built-ins and `RUBRICS_DIR`) and `GET /rubrics/{name}` (the full rubric)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from evalserve.judge.rubric import list_rubrics, load_rubric
from evalserve.server.deps import SettingsDep

router = APIRouter(tags=["rubrics"])


@router.get("/rubrics")
async def get_rubrics(settings: SettingsDep) -> dict[str, Any]:
    """Every rubric: name, description, input fields, scale, language, format."""
    return {"rubrics": [r.summary() for r in list_rubrics(settings.rubrics_dir)]}


@router.get("/rubrics/{name}")
async def get_rubric(name: str, settings: SettingsDep) -> dict[str, Any]:
    """One rubric in full (instructions, template, examples) and its hash; 404 if unknown."""
    rubric = load_rubric(name, settings.rubrics_dir)
    return {**rubric.model_dump(mode="json"), "hash": rubric.hash()}
