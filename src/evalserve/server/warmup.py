"""Start-up warm-up from `WARMUP_FILE`: the first graded request is not the slowest.

A server component (`server/components.py`). With `WARMUP_FILE` set it waits for the engine,
then answers the file's first `WARMUP_MAX_PROMPTS` prompts as one `/predict` batch of at most
`WARMUP_MAX_TOKENS` tokens each, and logs how long that took. `GET /` reports `loading` until
the warm-up is over (graders start their clock when `GET /` answers); `/health` is not
delayed. Warm-up failures (missing file, bad lines, engine errors) are logged and never stop
the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from evalserve.generation.predict import PredictOptions, predict
from evalserve.records import iter_jsonl

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.server.state import AppState
    from evalserve.settings import Settings

__all__ = ["warmup", "is_warm", "read_warmup_prompts"]

log = logging.getLogger(__name__)

def is_warm(state: AppState) -> bool:
    """False while a warm-up is still running (True when none was configured)."""
    done = state.components.warmup_done
    return done is None or done.is_set()


def read_warmup_prompts(path: Path, limit: int) -> list[str]:
    """The first `limit` prompts of a JSONL file: `{"prompt": "..."}` objects or JSON strings.

    Lines that are blank or hold no prompt are skipped (and logged).
    """
    def skipped(number: int, reason: str) -> None:
        log.warning("WARMUP_FILE %s line %d is not JSON (%s); skipped", path, number, reason)

    prompts: list[str] = []
    for number, value in iter_jsonl(path, on_invalid=skipped):
        if len(prompts) >= limit:
            break
        prompt = value.get("prompt") if isinstance(value, dict) else value
        if isinstance(prompt, str) and prompt.strip():
            prompts.append(prompt)
            if len(prompts) >= limit:
                break  # read no further than the prompts used
        else:
            log.warning("WARMUP_FILE %s line %d has no \"prompt\" string; skipped", path, number)
    return prompts


async def _run(settings: Settings, engine_provider: Callable[[], Awaitable[Engine]],
               done: asyncio.Event) -> None:
    try:
        engine = await engine_provider()
        assert settings.warmup_file is not None
        prompts = await asyncio.to_thread(
            read_warmup_prompts, settings.warmup_file, settings.warmup_max_prompts
        )
        if not prompts:
            log.warning("WARMUP_FILE %s holds no prompts; no warm-up", settings.warmup_file)
            return
        options = PredictOptions.from_settings(
            settings, max_tokens=min(settings.warmup_max_tokens, settings.max_new_tokens)
        )
        started = time.perf_counter()
        await predict(engine, prompts, options)
        log.info("warm-up: %d prompts answered in %.2f s", len(prompts),
                    time.perf_counter() - started)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # warm-up is an optimisation: never fatal
        log.warning("warm-up failed (the service starts anyway): %s", exc)
    finally:
        done.set()


@contextlib.asynccontextmanager
async def warmup(settings: Settings, engine_provider: Callable[[], Awaitable[Engine]]
                 ) -> AsyncIterator[asyncio.Event | None]:
    """Run the warm-up in the background while the server starts answering; yields the event
    set once it is over (None without `WARMUP_FILE`). Exiting cancels an unfinished one."""
    if settings.warmup_file is None:
        yield None
        return
    done = asyncio.Event()
    task = asyncio.create_task(_run(settings, engine_provider, done))
    try:
        yield done
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
