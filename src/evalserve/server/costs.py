"""What a request may cost: the per-request caps, and the rate-limit charges of the routes.

Caps answer 413 naming the limit and its setting (`MAX_PROMPTS_PER_REQUEST`,
`MAX_SEQUENCES_PER_REQUEST`, `MAX_TEXTS_PER_REQUEST`); a token budget over
`MAX_TOKENS_PER_REQUEST` answers 422. Charges go to the app's
`RateLimiter` (`server/ratelimit.py`) under `Caller.identity`: prompts per model on `/v1`,
prompts on `/predict` and `/generate` (`PREDICT_RATE_LIMIT`), items on `/evaluate`, texts on
the metrics routes. Refusals are
counted in Prometheus (`text_rate_limited_requests` per model,
`evalserve_rate_limited_requests` per kind).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from evalserve.errors import InvalidInputError, PayloadTooLargeError, RateLimitError
from evalserve.server.auth import caller_of

if TYPE_CHECKING:
    from fastapi import Request

    from evalserve.server.auth import Caller
    from evalserve.server.state import AppState
    from evalserve.settings import Settings

__all__ = ["check_count", "check_max_tokens", "charge_prompts", "charge_predict",
           "charge_items", "charge_texts"]


def check_count(count: int, limit: int, what: str, setting: str) -> None:
    """A 413 when `count` `what` exceed `limit` (set by `setting`)."""
    if count > limit:
        raise PayloadTooLargeError(
            f"{count} {what} in one request; the limit is {limit} ({setting}): split the "
            "request into several")


def check_max_tokens(settings: Settings, requested: int | None, field: str) -> None:
    """A 422 when a request asks to generate more than `MAX_TOKENS_PER_REQUEST` tokens."""
    limit = settings.max_tokens_per_request
    if requested is not None and 0 < limit < requested:
        raise InvalidInputError(
            f"{field} is {requested}; this server generates at most {limit} tokens per "
            "request (MAX_TOKENS_PER_REQUEST): ask for fewer")


async def charge_prompts(state: AppState, caller: Caller, model: str, cost: int) -> None:
    """Charge `cost` prompts to the caller's window of `model` (429 when over)."""
    limiter = state.components.rate_limiter
    if limiter is None:
        return
    try:
        await limiter.hit(caller.identity, model, cost)
    except RateLimitError:
        telemetry = state.components.telemetry
        if telemetry is not None:
            telemetry.rate_limited.labels(model).inc()
        raise


async def charge_predict(state: AppState, caller: Caller, count: int) -> None:
    """Charge `count` prompts of `/predict` or `/generate` (`PREDICT_RATE_LIMIT`; 429 when
    over)."""
    limiter = state.components.rate_limiter
    if limiter is not None:
        await _counted(state, "predict", limiter.hit_predict(caller.identity, count))


async def charge_items(request: Request, count: int) -> None:
    """Charge `count` submitted items to the caller (`ITEM_RATE_LIMIT`; 429 when over)."""
    state: AppState = request.app.state.evalserve
    limiter = state.components.rate_limiter
    if limiter is not None:
        await _counted(state, "items", limiter.hit_items(caller_of(request).identity, count))


async def charge_texts(request: Request, count: int) -> None:
    """Charge `count` metric texts (or pairs) to the caller (`TEXT_RATE_LIMIT`; 429 when
    over), after checking them against `MAX_TEXTS_PER_REQUEST` (413)."""
    state: AppState = request.app.state.evalserve
    check_count(count, state.settings.max_texts_per_request, "texts", "MAX_TEXTS_PER_REQUEST")
    limiter = state.components.rate_limiter
    if limiter is not None:
        await _counted(state, "texts", limiter.hit_texts(caller_of(request).identity, count))


async def _counted(state: AppState, kind: str, charge: Awaitable[None]) -> None:
    try:
        await charge
    except RateLimitError:
        telemetry = state.components.telemetry
        if telemetry is not None:
            telemetry.limited.labels(kind).inc()
        raise
