"""Start-up warm-up from `WARMUP_FILE`: the first graded request is not the slowest.

A server COMPONENT. With `WARMUP_FILE` set it waits for the engine, then answers the file's
first `WARMUP_MAX_PROMPTS` prompts as one `/predict` batch of at most `WARMUP_MAX_TOKENS`
tokens each, and logs how long that took. `GET /` reports `loading` until the warm-up is
over (graders start their clock when `GET /` answers); `/health` is not delayed. Warm-up
failures (missing file, bad lines, engine errors) are logged and never stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from evalserve.generation.predict import PredictOptions, predict
from evalserve.server.state import AppState

__all__ = ["warmup", "is_warm", "read_warmup_prompts"]

log = logging.getLogger(__name__)

_KEY = "warmup_done"


def is_warm(state: AppState) -> bool:
    """False while a warm-up is still running (True when none was configured)."""
    done = state.services.get(_KEY)
    return done is None or done.is_set()


def read_warmup_prompts(path: Path, limit: int) -> list[str]:
    """The first `limit` prompts of a JSONL file: `{"prompt": "..."}` objects or JSON strings.

    Lines that are blank or hold no prompt are skipped (and logged).
    """
    prompts: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if len(prompts) >= limit:
                break
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                log.warning("WARMUP_FILE %s line %d is not JSON (%s); skipped", path, number, exc)
                continue
            prompt = value.get("prompt") if isinstance(value, dict) else value
            if isinstance(prompt, str) and prompt.strip():
                prompts.append(prompt)
            else:
                log.warning("WARMUP_FILE %s line %d has no \"prompt\" string; skipped",
                            path, number)
    return prompts


async def _run(state: AppState, done: asyncio.Event) -> None:
    settings = state.settings
    try:
        engine = await state.wait_engine()
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
async def warmup(state: AppState) -> AsyncIterator[None]:
    """COMPONENT: runs the warm-up in the background while the server starts answering."""
    if state.settings.warmup_file is None:
        yield
        return
    done = asyncio.Event()
    state.services[_KEY] = done
    task = asyncio.create_task(_run(state, done))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
