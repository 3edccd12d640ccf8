"""The one exception tree of evalserve.

Library code raises these; they are translated once at the edges: the HTTP error envelope
(`server/errors.py`), the CLI message, and a job's `error` event. Messages say what was
wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EvalserveError",
    "InvalidInputError",
    "NotFoundError",
    "ConflictError",
    "AuthenticationError",
    "RateLimitError",
    "ConfigurationError",
    "EngineError",
    "EngineUnavailableError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "PayloadTooLargeError",
    "StorageFullError",
    "TrackingError",
    "error_body",
]


class EvalserveError(Exception):
    """Base of every evalserve error. `status` and `code` drive the HTTP envelope."""

    status: int = 500
    type: str = "server_error"
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInputError(EvalserveError):
    """The request or file is malformed; the message says which field and what it accepts."""

    status = 422
    type = "invalid_request_error"
    code = "invalid_input"


class NotFoundError(EvalserveError):
    """A job, rubric or model that does not exist."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ConflictError(EvalserveError):
    """The resource exists but is in a state that forbids the operation."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class AuthenticationError(EvalserveError):
    """Missing or wrong bearer token."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class RateLimitError(EvalserveError):
    """Too many requests for this key and model; `retry_after` is in seconds."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigurationError(EvalserveError):
    """A setting, model path or optional dependency is missing or wrong."""

    status = 500
    type = "server_error"
    code = "configuration_error"


class EngineError(EvalserveError):
    """The engine failed to produce a result."""

    status = 500
    type = "server_error"
    code = "engine_error"


class EngineUnavailableError(EngineError):
    """The engine is not loaded yet, or is closing."""

    status = 503
    code = "engine_unavailable"


class UpstreamError(EngineError):
    """An upstream OpenAI-compatible server failed or could not be reached."""

    status = 502
    type = "upstream_error"
    code = "bad_gateway"


class UpstreamTimeoutError(UpstreamError):
    """An upstream server did not answer in time."""

    status = 504
    code = "gateway_timeout"


class PayloadTooLargeError(EvalserveError):
    """A request body or list larger than the configured limit."""

    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class StorageFullError(EvalserveError):
    """The job store cannot write (disk full, database locked): nothing new is accepted until
    it can; running jobs pause and go on once it writes again."""

    status = 503
    type = "server_error"
    code = "storage_unavailable"


class TrackingError(EvalserveError):
    """Logging to MLflow failed (the tracking URI is wrong or unreachable)."""

    code = "tracking_error"


def error_body(exc: BaseException) -> dict[str, Any]:
    """The `error` object of the one envelope, `{"message", "type", "code"}`, for `exc`.

    The HTTP handlers answer `{"error": error_body(exc)}`; a job's `error` event carries it too.
    An exception outside the tree is a `server_error` named by its class (the HTTP handler
    hides it behind a generic `EvalserveError` instead, so a response never leaks internals).
    """
    if isinstance(exc, EvalserveError):
        return {"message": exc.message, "type": exc.type, "code": exc.code}
    return {"message": f"{type(exc).__name__}: {exc}", "type": EvalserveError.type,
            "code": EvalserveError.code}
