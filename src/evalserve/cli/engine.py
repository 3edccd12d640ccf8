"""The configured engine for a CLI command: started under a "loading model..." spinner."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from evalserve.engines.registry import running

if TYPE_CHECKING:
    from rich.console import Console

    from evalserve.engines.base import Engine
    from evalserve.settings import Settings

__all__ = ["loaded_engine"]


@contextlib.asynccontextmanager
async def loaded_engine(settings: Settings, console: Console) -> AsyncIterator[Engine]:
    """`engines.registry.running(settings)`, with a spinner while the model loads."""
    async with contextlib.AsyncExitStack() as stack:
        with console.status("loading model..."):
            engine = await stack.enter_async_context(running(settings))
        yield engine
