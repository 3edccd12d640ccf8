"""Handlers of the OpenAI surface: wire requests in, `GenerationRequest`s to the engine,
OpenAI responses and stream chunks out. Usable without the router (tests, other surfaces)."""

from __future__ import annotations

from evalserve.server.serving.chat import serve_chat
from evalserve.server.serving.completions import serve_completion
from evalserve.server.serving.models import list_models, show_model

__all__ = ["serve_chat", "serve_completion", "list_models", "show_model"]
