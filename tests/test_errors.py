"""The exception tree: each error's HTTP status, envelope type and code, its message, and
`error_body`, the one builder of the envelope's `error` object."""

from __future__ import annotations

import inspect

import pytest

import evalserve.errors as errors_mod
from evalserve.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    EngineError,
    EngineUnavailableError,
    EvalserveError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    StorageFullError,
    TrackingError,
    UpstreamError,
    UpstreamTimeoutError,
    error_body,
)

TREE = [
    (EvalserveError, 500, "server_error", "internal_error"),
    (InvalidInputError, 422, "invalid_request_error", "invalid_input"),
    (NotFoundError, 404, "invalid_request_error", "not_found"),
    (ConflictError, 409, "invalid_request_error", "conflict"),
    (AuthenticationError, 401, "authentication_error", "invalid_api_key"),
    (RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded"),
    (ConfigurationError, 500, "server_error", "configuration_error"),
    (EngineError, 500, "server_error", "engine_error"),
    (EngineUnavailableError, 503, "server_error", "engine_unavailable"),
    (UpstreamError, 502, "upstream_error", "bad_gateway"),
    (UpstreamTimeoutError, 504, "upstream_error", "gateway_timeout"),
    (PayloadTooLargeError, 413, "invalid_request_error", "payload_too_large"),
    (StorageFullError, 503, "server_error", "storage_unavailable"),
    (TrackingError, 500, "server_error", "tracking_error"),
]


@pytest.mark.parametrize(("cls", "status", "type_", "code"), TREE,
                         ids=[row[0].__name__ for row in TREE])
def test_each_error_carries_its_status_type_and_code(cls: type[EvalserveError], status: int,
                                                     type_: str, code: str) -> None:
    exc = cls("what went wrong and how to fix it")
    assert (exc.status, exc.type, exc.code) == (status, type_, code)
    assert exc.message == str(exc) == "what went wrong and how to fix it"
    assert exc.args == ("what went wrong and how to fix it",)


def test_every_error_of_the_module_is_in_the_tree_and_exported() -> None:
    defined = {name for name, obj in vars(errors_mod).items()
               if inspect.isclass(obj) and issubclass(obj, BaseException)
               and obj.__module__ == errors_mod.__name__}
    assert defined == {cls.__name__ for cls, *_ in TREE}
    assert defined <= set(errors_mod.__all__)
    assert all(issubclass(cls, EvalserveError) for cls, *_ in TREE)
    assert all(hasattr(errors_mod, name) for name in errors_mod.__all__)


def test_engine_failures_are_engine_errors() -> None:
    # callers catch EngineError to handle every engine-side failure, upstream ones included
    assert issubclass(EngineUnavailableError, EngineError)
    assert issubclass(UpstreamError, EngineError)
    assert issubclass(UpstreamTimeoutError, UpstreamError)
    assert not issubclass(ConfigurationError, EngineError)
    with pytest.raises(EngineError) as info:
        raise UpstreamTimeoutError("upstream did not answer in 120 s")
    assert info.value.status == 504


def test_a_code_override_is_per_instance() -> None:
    exc = InvalidInputError("rubric 'x' has no field 'y'", code="invalid_rubric")
    assert exc.code == "invalid_rubric"
    assert (exc.status, exc.type) == (422, "invalid_request_error")
    assert InvalidInputError.code == "invalid_input"
    assert InvalidInputError("again").code == "invalid_input"


def test_rate_limit_error_carries_retry_after() -> None:
    assert RateLimitError("slow down").retry_after == 1
    exc = RateLimitError("30/minute exceeded for my-model", retry_after=17)
    assert exc.retry_after == 17
    assert exc.message == "30/minute exceeded for my-model"
    assert exc.code == "rate_limit_exceeded"


@pytest.mark.parametrize(("exc", "body"), [
    (NotFoundError("no job 'abc'"),
     {"message": "no job 'abc'", "type": "invalid_request_error", "code": "not_found"}),
    (UpstreamTimeoutError("upstream timed out"),
     {"message": "upstream timed out", "type": "upstream_error", "code": "gateway_timeout"}),
    (RateLimitError("too many", retry_after=5),
     {"message": "too many", "type": "rate_limit_error", "code": "rate_limit_exceeded"}),
    (InvalidInputError("bad rubric", code="invalid_rubric"),
     {"message": "bad rubric", "type": "invalid_request_error", "code": "invalid_rubric"}),
    (EvalserveError("the job failed"),
     {"message": "the job failed", "type": "server_error", "code": "internal_error"}),
])
def test_error_body_of_a_library_error(exc: EvalserveError, body: dict[str, str]) -> None:
    assert error_body(exc) == body


def test_error_body_of_an_unexpected_exception_is_a_server_error_named_by_its_class() -> None:
    assert error_body(ValueError("math domain error")) == {
        "message": "ValueError: math domain error", "type": "server_error",
        "code": "internal_error"}
    assert error_body(KeyError("item"))["message"] == "KeyError: 'item'"
