"""Seed 003's `/predict` on a running server, asynchronously, the way graders call it.

Poll `GET /` until it answers 200, then `POST /predict` one prompt or a batch of prompts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

from evalserve.client.http import AsyncConnection, EvalserveHTTPError, async_client, send_async
from evalserve.errors import UpstreamError

__all__ = ["PredictClient"]


class PredictClient(AsyncConnection):
    """`/predict` on the server at `base_url`.

    Args:
        base_url: the server, e.g. `http://localhost:8000`.
        token: bearer token, or None for an open server.
        timeout: seconds per request (a batch of many prompts takes a while).
        max_connections: requests in flight at most.
        transport: an httpx transport to use instead of the network (tests).
    """

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 900.0,
                 max_connections: int = 1,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = base_url.rstrip("/")
        limits = httpx.Limits(max_connections=max(max_connections, 1))
        self.http = async_client(self.url, token, timeout=timeout, limits=limits,
                                 transport=transport)

    async def wait_ready(self, wait_s: float) -> str:
        """Poll `GET /` until it answers 200 and return its `status` (`ok`, `batch`...);
        `UpstreamError` after `wait_s` seconds."""
        deadline = time.monotonic() + wait_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = await self.http.get("/", timeout=5)
                if response.status_code == 200:
                    return str(response.json().get("status"))
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.5)
        raise UpstreamError(f"{self.url}/ was not ready within {wait_s:.0f} s (last: {last})")

    async def predict(self, prompt: str) -> str:
        """The answer to one prompt (`{"prompt": "..."}`)."""
        return str(await self._post({"prompt": prompt}, None))

    async def predict_batch(self, prompts: Sequence[str]) -> list[str]:
        """The answers to `prompts`, in order, from one request (the server's batch mode)."""
        return list(await self._post({"prompt": list(prompts)}, len(prompts)))

    async def _post(self, body: dict[str, Any], expected: int | None) -> Any:
        try:
            response = await send_async(self.http, "POST", "/predict", json=body)
        except EvalserveHTTPError as err:
            raise UpstreamError(err.message if err.status == 0 else
                                f"POST /predict answered {err.status}: {err.message}") from None
        answer = response.json().get("response")
        if expected is not None and (not isinstance(answer, list) or len(answer) != expected):
            got = len(answer) if isinstance(answer, list) else type(answer).__name__
            raise UpstreamError(f"POST /predict returned {got} answers for {expected} prompts")
        return answer
