"""The OpenAI-compatible routes (seeds 001 and 004). Thin: validate, call serving, return."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from evalserve.server.auth import client_identity
from evalserve.server.deps import StateDep
from evalserve.server.protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    ModelDetail,
    ModelList,
)
from evalserve.server.serving import list_models, serve_chat, serve_completion, show_model

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", response_model=ModelList)
async def models(state: StateDep) -> ModelList:
    """Models served, OpenAI list shape."""
    return await list_models(state)


@router.get("/models/{model_id:path}", response_model=ModelDetail)
async def model(model_id: str, state: StateDep) -> ModelDetail:
    """One model; ids may contain `/` (`meta-llama/Llama-2-7b-chat-hf`)."""
    return await show_model(state, model_id)


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request, state: StateDep) -> Response:
    """Text completions; `stream: true` answers Server-Sent Events ending in `[DONE]`."""
    return await serve_completion(state, body, client_identity(request.scope))


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request,
                           state: StateDep) -> Response:
    """Chat completions, with `response_format` / `structured_outputs` and logprobs."""
    return await serve_chat(state, body, client_identity(request.scope))
