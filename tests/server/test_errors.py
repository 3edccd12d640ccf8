"""The one error envelope: every kind of failure reaches the client as
`{"error": {"message", "type", "code"}}` with the right status and nothing internal."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException

from evalserve import errors as lib
from evalserve.server.app import build_app
from evalserve.server.errors import describe_validation_errors, error_response
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.server.openai_app import chat_body, make_settings

SECRET = "postgres://admin:hunter2@db/prod"


def app_with_failing_routes(settings: Settings) -> FastAPI:
    app = build_app(make_settings(settings), engine=ScriptedEngine(lambda r: "x"))
    router = APIRouter()

    @router.get("/raise/{name}")
    async def raise_library_error(name: str, code: str | None = None) -> None:
        cls = getattr(lib, name)
        if cls is lib.RateLimitError:
            raise lib.RateLimitError("slow down: 10 requests per minute", retry_after=17)
        raise cls(f"{name} happened", code=code)

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError(f"cannot connect to {SECRET}")

    @router.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout", headers={"X-Tea": "earl grey"})

    @router.get("/typed")
    async def typed(limit: int, ratio: float = 0.5) -> dict[str, float]:
        return {"limit": limit, "ratio": ratio}

    app.include_router(router)
    return app


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = app_with_failing_routes(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def envelope(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "code"}
    return body["error"]


@pytest.mark.parametrize(("name", "status", "type_", "code"), [
    ("InvalidInputError", 422, "invalid_request_error", "invalid_input"),
    ("NotFoundError", 404, "invalid_request_error", "not_found"),
    ("ConflictError", 409, "invalid_request_error", "conflict"),
    ("AuthenticationError", 401, "authentication_error", "invalid_api_key"),
    ("ConfigurationError", 500, "server_error", "configuration_error"),
    ("EngineError", 500, "server_error", "engine_error"),
    ("EngineUnavailableError", 503, "server_error", "engine_unavailable"),
    ("UpstreamError", 502, "upstream_error", "bad_gateway"),
    ("UpstreamTimeoutError", 504, "upstream_error", "gateway_timeout"),
    ("TrackingError", 500, "server_error", "tracking_error"),
    ("EvalserveError", 500, "server_error", "internal_error"),
])
async def test_each_library_error_keeps_its_status_type_code_and_message(
        client: httpx.AsyncClient, name: str, status: int, type_: str, code: str) -> None:
    r = await client.get(f"/raise/{name}")
    assert r.status_code == status
    assert envelope(r) == {"message": f"{name} happened", "type": type_, "code": code}


async def test_a_library_error_s_own_code_is_kept(client: httpx.AsyncClient) -> None:
    r = await client.get("/raise/NotFoundError", params={"code": "model_not_found"})
    assert r.status_code == 404 and envelope(r)["code"] == "model_not_found"


async def test_rate_limit_error_says_when_to_retry(client: httpx.AsyncClient) -> None:
    r = await client.get("/raise/RateLimitError")
    assert r.status_code == 429 and r.headers["retry-after"] == "17"
    assert envelope(r) == {"message": "slow down: 10 requests per minute",
                           "type": "rate_limit_error", "code": "rate_limit_exceeded"}


async def test_server_side_library_errors_are_logged_client_errors_are_not(
        client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="evalserve.server.errors"):
        await client.get("/raise/NotFoundError")
        await client.get("/raise/UpstreamError")
    logged = [r.getMessage() for r in caplog.records if r.name == "evalserve.server.errors"]
    assert logged == ["UpstreamError: UpstreamError happened"]


async def test_unexpected_exception_is_a_500_that_leaks_nothing(
        client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="evalserve.server.errors"):
        r = await client.get("/crash")
    assert r.status_code == 500
    assert envelope(r) == {"message": "internal server error; see the server log",
                           "type": "server_error", "code": "internal_error"}
    assert SECRET not in r.text and "RuntimeError" not in r.text and "Traceback" not in r.text
    # the details go to the server log, with the traceback
    [record] = [rec for rec in caplog.records if rec.name == "evalserve.server.errors"]
    assert record.exc_info is not None and SECRET in str(record.exc_info[1])


async def test_request_validation_errors_name_each_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat_body(temperature=9, n=0))
    assert r.status_code == 422
    assert envelope(r) == {
        "message": "temperature: Input should be less than or equal to 2; "
                   "n: Input should be greater than or equal to 1",
        "type": "invalid_request_error", "code": "invalid_input"}
    r = await client.get("/typed", params={"limit": "many"})
    assert r.status_code == 422 and envelope(r)["message"] == (
        "query.limit: Input should be a valid integer, unable to parse string as an integer")
    r = await client.get("/typed")
    assert envelope(r)["message"] == "query.limit: Field required"


async def test_openapi_documents_the_envelope_as_every_422(client: httpx.AsyncClient) -> None:
    """Defect: /openapi.json documented FastAPI's `{"detail": [...]}` for every 422 while the
    server answers the envelope, so a client generated from the schema expected the wrong
    body (schemathesis passed only because `detail` was optional)."""
    import jsonschema

    schema = (await client.get("/openapi.json")).json()
    ref = schema["paths"]["/v1/chat/completions"]["post"]["responses"]["422"]["content"][
        "application/json"]["schema"]["$ref"]
    documented = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert documented["required"] == ["error"] and "ValidationError" not in schema[
        "components"]["schemas"]
    r = await client.post("/v1/chat/completions", json=chat_body(n=0))
    jsonschema.validate(r.json(), documented)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"detail": [{"loc": ["body"], "msg": "x"}]}, documented)


async def test_a_body_that_is_not_json_is_a_validation_envelope(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert r.status_code == 422
    error = envelope(r)
    assert error["code"] == "invalid_input" and "JSON decode error" in error["message"]


async def test_unknown_route_is_a_404_envelope(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/nothing")
    assert r.status_code == 404
    assert envelope(r) == {"message": "Not Found", "type": "invalid_request_error",
                           "code": "not_found"}


async def test_wrong_method_is_a_405_envelope_with_allow(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/chat/completions")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert envelope(r) == {"message": "Method Not Allowed", "type": "invalid_request_error",
                           "code": "method_not_allowed"}


async def test_other_http_exceptions_keep_status_detail_and_headers(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/teapot")
    assert r.status_code == 418 and r.headers["x-tea"] == "earl grey"
    assert envelope(r) == {"message": "short and stout", "type": "invalid_request_error",
                           "code": "http_error"}


def test_describe_validation_errors_joins_fields_without_the_body_prefix() -> None:
    errors = [{"loc": ("body", "messages", 0, "role"), "msg": "Field required"},
              {"loc": ("query", "limit"), "msg": "Input should be a valid integer"},
              {"loc": (), "msg": "Value error, send `text` or `prompt`"},
              {"loc": ("body",)}]
    assert describe_validation_errors(errors) == (
        "messages.0.role: Field required; query.limit: Input should be a valid integer; "
        "Value error, send `text` or `prompt`; invalid")


def test_describe_validation_errors_lists_ten_then_counts_the_rest() -> None:
    errors = [{"loc": ("body", f"f{i}"), "msg": "bad"} for i in range(13)]
    text = describe_validation_errors(errors)
    assert text.count("bad") == 10 and "f9: bad" in text and "f10" not in text
    assert text.endswith("f9: bad (and 3 more)")
    assert describe_validation_errors(errors[:10]).endswith("f9: bad")


def test_error_response_builds_the_envelope() -> None:
    r = error_response(409, "job j1 already finished", "invalid_request_error", "conflict",
                       headers={"X-Job": "j1"})
    assert r.status_code == 409 and r.headers["x-job"] == "j1"
    assert r.body == (b'{"error":{"message":"job j1 already finished",'
                      b'"type":"invalid_request_error","code":"conflict"}}')
