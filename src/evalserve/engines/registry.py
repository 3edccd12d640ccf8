"""Pick the engine named by the settings; heavy libraries are imported only for the one chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalserve.errors import ConfigurationError

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.settings import Settings

__all__ = ["create_engine", "ENGINES"]

ENGINES = ("transformers", "openai", "vllm")


def create_engine(settings: Settings) -> Engine:
    """Build (not start) the engine selected by `settings.engine`."""
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
