"""Every error leaves the server in one envelope: `{"error": {"message", "type", "code"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from evalserve.errors import EvalserveError, InvalidInputError, RateLimitError, error_body

__all__ = ["error_response", "install_error_handlers", "describe_validation_errors"]

log = logging.getLogger(__name__)

_HTTP_TYPES = {401: "authentication_error", 404: "invalid_request_error",
               405: "invalid_request_error", 429: "rate_limit_error"}


def error_response(
    status: int, message: str, type_: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The envelope for an error that is not an `EvalserveError` (e.g. Starlette's 404)."""
    body = {"error": {"message": message, "type": type_, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _envelope(exc: EvalserveError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error_body(exc)}, status_code=exc.status, headers=headers)


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """Turn pydantic errors into one sentence naming each field and what it needs."""
    parts = []
    for err in errors[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        msg = err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
    return "; ".join(parts) + more


async def _evalserve_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EvalserveError)
    if exc.status >= 500:
        log.error("%s: %s", type(exc).__name__, exc.message)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimitError) else None
    return _envelope(exc, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message = describe_validation_errors(list(exc.errors()))
    return _envelope(InvalidInputError(message))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    type_ = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, str(exc.detail), type_, code, exc.headers)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _envelope(EvalserveError("internal server error; see the server log"))


#: The envelope as OpenAPI documents it: every route's 422 (FastAPI would document its own
#: `HTTPValidationError {detail}`, which this server never sends).
ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": "ErrorEnvelope",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "code": {"type": "string"}},
    }},
}


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the envelope, and document it as the 422 of every route."""
    app.add_exception_handler(EvalserveError, _evalserve_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # FastAPI's builder caches what it returns there
            schemas = build_schema().get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ENVELOPE_SCHEMA
                schemas.pop("ValidationError", None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
