"""`GET /v1/models` and `GET /v1/models/{id}`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalserve.errors import NotFoundError
from evalserve.server.protocol.openai import ModelCard, ModelDetail, ModelList

if TYPE_CHECKING:
    from evalserve.engines.base import ModelInfo
    from evalserve.server.state import AppState

__all__ = ["list_models", "show_model"]


def _card(info: ModelInfo) -> ModelCard:
    return ModelCard(id=info.id, created=info.created, owned_by=info.owned_by,
                     max_model_len=info.max_model_len)


async def list_models(state: AppState) -> ModelList:
    """The models the engine serves, in OpenAI's list shape (503 while loading)."""
    engine = state.ready_engine()
    return ModelList(data=[_card(m) for m in await engine.models()])


async def show_model(state: AppState, model_id: str) -> ModelDetail:
    """One model: OpenAI's fields plus seed 001's status, GPU memory (GB) and load time."""
    engine = state.ready_engine()
    for info in await engine.models():
        if info.id == model_id:
            return ModelDetail(**_card(info).model_dump(), model=info.id, status="loaded",
                               gpu_memory_usage=info.gpu_memory_gb, loaded_at=info.loaded_at)
    raise NotFoundError(f"model {model_id!r} is not served here; GET /v1/models lists the "
                        "served models", code="model_not_found")
