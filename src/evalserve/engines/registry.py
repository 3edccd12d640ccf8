"""Pick the engine named by the settings; heavy libraries are imported only for the one chosen."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from evalserve.errors import ConfigurationError

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.settings import Settings

__all__ = ["create_engine", "running", "ENGINES"]

ENGINES = ("transformers", "openai", "vllm")


def create_engine(settings: Settings) -> Engine:
    """Build (not start) the engine selected by `settings.engine`; with `UPSTREAMS_FILE`, the
    router over its models (it replaces `ENGINE` and `VLLM_ENDPOINT`)."""
    if settings.upstreams_file is not None:
        from evalserve.engines.router import RouterEngine

        return RouterEngine.from_settings(settings)
    if settings.engine == "transformers":
        from evalserve.engines.transformers.engine import TransformersEngine

        return TransformersEngine.from_settings(settings)
    if settings.engine == "openai":
        from evalserve.engines.openai import OpenAIEngine

        return OpenAIEngine.from_settings(settings)
    if settings.engine == "vllm":
        from evalserve.engines.vllm import VLLMEngine

        return VLLMEngine.from_settings(settings)
    raise ConfigurationError(f"ENGINE={settings.engine!r} is not one of {', '.join(ENGINES)}")


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Engine]:
    """The engine of `settings`, started, and closed on exit (the CLI's and scripts' lifecycle;
    the server's lifespan starts its engine in the background instead)."""
    engine = create_engine(settings)
    try:
        await engine.start()
        yield engine
    finally:
        await engine.close()
