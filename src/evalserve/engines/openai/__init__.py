"""The `openai` engine: evalserve in front of any OpenAI-compatible server (`vllm serve`,
llama.cpp, TGI, SGLang, another evalserve)."""

from __future__ import annotations

from evalserve.engines.openai.engine import OpenAIEngine

__all__ = ["OpenAIEngine"]
