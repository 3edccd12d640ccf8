"""Which failures are retried per item, and the backoff."""

from __future__ import annotations

import pytest

from evalserve.errors import (
    EngineError,
    EngineUnavailableError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from evalserve.jobs.retry import RetryPolicy, engine_gone, is_transient


@pytest.mark.parametrize(("exc", "transient"), [
    (UpstreamError("502"), True), (UpstreamTimeoutError("504"), True),
    (RateLimitError("429"), True), (EngineError("boom"), True),
    (ConnectionError("reset"), True), (TimeoutError(), True),
    (InvalidInputError("too long"), False), (EngineUnavailableError("closing"), False),
    (NotFoundError("model"), False), (ValueError("bug"), False),
])
def test_transient_errors(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
    assert engine_gone(exc) is isinstance(exc, EngineUnavailableError)


def test_backoff_doubles_with_jitter_honours_retry_after_and_is_capped() -> None:
    low, high = RetryPolicy(3, 0.5, rand=lambda: 0.0), RetryPolicy(3, 0.5, rand=lambda: 1.0)
    assert [low.delay(k) for k in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert [high.delay(k) for k in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert high.delay(1, RateLimitError("slow", retry_after=9)) == 9.0
    assert high.delay(30) == 60.0


async def test_run_retries_then_raises_the_last_error() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    calls = []

    async def failing() -> None:
        calls.append(1)
        raise OSError(f"try {len(calls)}")

    with pytest.raises(OSError, match="try 3"):
        await RetryPolicy(2, 1.0, sleep=sleep, rand=lambda: 1.0).run("x", failing)
    assert waits == [1.0, 2.0]
