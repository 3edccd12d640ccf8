"""What the running server holds: settings, the engine and the services built on it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalserve.errors import EngineUnavailableError

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.settings import Settings

__all__ = ["AppState"]


@dataclass
class AppState:
    """One per app; components started by the lifespan attach their services here."""

    settings: Settings
    engine: Engine
    started_at: float = field(default_factory=time.time)
    engine_ready: asyncio.Event = field(default_factory=asyncio.Event)
    engine_error: BaseException | None = None
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        return self.engine_ready.is_set() and self.engine_error is None

    def ready_engine(self) -> Engine:
        """The engine, or a 503 error while it is still loading (or failed to load)."""
        if self.engine_error is not None:
            raise EngineUnavailableError(f"the model failed to load: {self.engine_error}")
        if not self.engine_ready.is_set():
            raise EngineUnavailableError("the model is still loading; retry in a few seconds")
        return self.engine

    async def wait_engine(self) -> Engine:
        """Wait until the engine is loaded (raises if loading failed)."""
        await self.engine_ready.wait()
        return self.ready_engine()
