"""The OpenAI-compatible routes (seeds 001 and 004). Thin: validate, call serving, return."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from evalserve.server.auth import caller_of
from evalserve.server.protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    ModelDetail,
    ModelList,
)
from evalserve.server.serving import list_models, serve_chat, serve_completion, show_model
from evalserve.server.state import AppState

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])


def _state(request: Request) -> AppState:
    # read directly, not through the sync StateDep: FastAPI runs sync dependencies in a
    # thread pool, a thread hop per request on the hot path
    return request.app.state.evalserve


@router.get("/models", response_model=ModelList)
async def models(request: Request) -> ModelList:
    """Models served, OpenAI list shape."""
    return await list_models(_state(request))


@router.get("/models/{model_id:path}", response_model=ModelDetail)
async def model(model_id: str, request: Request) -> ModelDetail:
    """One model; ids may contain `/` (`meta-llama/Llama-2-7b-chat-hf`)."""
    return await show_model(_state(request), model_id)


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request) -> Response:
    """Text completions; `stream: true` answers Server-Sent Events ending in `[DONE]`."""
    return await serve_completion(_state(request), body, caller_of(request))


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """Chat completions, with `response_format` / `structured_outputs` and logprobs."""
    return await serve_chat(_state(request), body, caller_of(request))
