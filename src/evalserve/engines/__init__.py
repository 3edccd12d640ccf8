"""Engines: one interface (`Engine`), several backends chosen by `create_engine(settings)`."""

from __future__ import annotations

from evalserve.engines.base import (
    CompletionOutput,
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    OutputConstraint,
    StreamDelta,
    TokenLogprob,
)
from evalserve.engines.registry import create_engine

__all__ = [
    "CompletionOutput",
    "Engine",
    "EngineHealth",
    "GenerationRequest",
    "GenerationResult",
    "ModelInfo",
    "OutputConstraint",
    "StreamDelta",
    "TokenLogprob",
    "create_engine",
]
