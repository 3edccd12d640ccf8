"""The model a running server serves, from its OpenAI-compatible `GET /v1/models`."""

from __future__ import annotations

import httpx

from evalserve.client.http import EvalserveHTTPError, send, sync_client

__all__ = ["served_model_id"]


def served_model_id(base_url: str, token: str | None = None, timeout: float = 30.0) -> str:
    """The id of the first model `GET /v1/models` lists, or `unknown` when the server does
    not say (unreachable, an error, or an empty list)."""
    try:
        with sync_client(base_url, token, timeout=timeout) as http:
            return str(send(http, "GET", "/v1/models").json()["data"][0]["id"])
    except (EvalserveHTTPError, httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return "unknown"
