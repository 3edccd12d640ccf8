"""Bearer auth covers every route of the app (enumerated), except the health routes; every
request gets a `Caller` (key id, admin, address)."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request

from evalserve.server.auth import OPEN_PATHS, Caller, caller_of, check_token, key_id
from tests.server.openai_app import make_settings, running_app

TOKENS = "alpha-token,beta-token"


def test_check_token_accepts_any_listed_token_only() -> None:
    tokens = ["alpha", "beta"]
    assert check_token("alpha", tokens) and check_token("beta", tokens)
    assert not check_token("alph", tokens)
    assert not check_token("alphaX", tokens)
    assert not check_token(None, tokens)
    assert not check_token("", tokens)


def test_tokens_come_from_both_settings_and_comma_lists(settings) -> None:  # noqa: ANN001
    s = make_settings(settings, api_token="a, b", text_gen_api_token="c", admin_api_token="d")
    assert s.api_tokens == ["a", "b", "c", "d"]
    assert s.admin_tokens == ["d"]


def test_a_key_id_is_a_hash_prefix_never_the_token() -> None:
    assert key_id("secret-token") == key_id("secret-token")
    assert key_id("secret-token") != key_id("secret-tokeN")
    assert len(key_id("secret-token")) == 16 and "secret" not in key_id("secret-token")


def test_what_a_caller_may_see_and_how_it_is_rate_limited() -> None:
    """Rate-limit identity without a checked token is the address: a rotated bearer string
    used to get a fresh window."""
    assert Caller("k1", False, "10.0.0.1").owner_filter == "k1"
    assert Caller("k1", True, "10.0.0.1").owner_filter is None
    assert Caller(None, True, "10.0.0.1").owner_filter is None  # single-user mode
    assert Caller(None, False, "10.0.0.1").owner_filter == ""  # anonymous: no owner matches
    assert Caller("k1", False, "10.0.0.1").identity == "key:k1"
    assert Caller(None, True, "10.0.0.1").identity == "ip:10.0.0.1"


async def whoami(request: Request) -> dict:
    c = caller_of(request)
    return {"key_id": c.key_id, "admin": c.admin, "identity": c.identity}


def _whoami(app) -> None:  # noqa: ANN001
    app.add_api_route("/whoami", whoami, methods=["GET"])


async def test_the_caller_of_each_token(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings, api_token="k1,k2",
                                         admin_api_token="root")) as (app, client):
        _whoami(app)
        seen = {}
        for token in ("k1", "k2", "root"):
            r = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
            seen[token] = r.json()
        assert seen["k1"] == {"key_id": key_id("k1"), "admin": False,
                              "identity": f"key:{key_id('k1')}"}
        assert seen["k2"]["key_id"] == key_id("k2") and not seen["k2"]["admin"]
        assert seen["root"] == {"key_id": key_id("root"), "admin": True,
                                "identity": f"key:{key_id('root')}"}


async def test_without_tokens_every_caller_is_the_single_user(settings) -> None:  # noqa: ANN001
    """Single-user mode: no key id, everything shared, rate limits by address even when a
    bearer string is sent."""
    async with running_app(make_settings(settings)) as (app, client):
        _whoami(app)
        r = await client.get("/whoami", headers={"Authorization": "Bearer anything"})
        assert r.json() == {"key_id": None, "admin": True, "identity": "ip:127.0.0.1"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _calls(app) -> list[tuple[str, str]]:  # noqa: ANN001
    """(method, concrete path) of every API route, routers included by any module."""
    calls = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD"}):
                calls.append((method, _concrete(route.path)))
    return calls


async def test_every_route_needs_a_token_except_health(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings, api_token=TOKENS)) as (app, client):
        calls = _calls(app)
        assert ("POST", "/v1/chat/completions") in calls and ("GET", "/metrics") in calls
        protected = [(m, p) for m, p in calls if p not in OPEN_PATHS]
        assert len(protected) >= 5
        for method, path in protected:
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": "Basic YWxwaGEtdG9rZW4="}):
                r = await client.request(method, path, headers=headers, json={})
                assert r.status_code == 401, (method, path, headers, r.text)
                assert r.json()["error"]["type"] == "authentication_error"
                assert r.headers["www-authenticate"].startswith("Bearer")
            for token in ("alpha-token", "beta-token"):
                r = await client.request(method, path, json={},
                                         headers={"Authorization": f"Bearer {token}"})
                assert r.status_code != 401, (method, path, r.text)
        for method, path in calls:
            if path in OPEN_PATHS:
                r = await client.request(method, path)
                assert r.status_code != 401, (method, path)


async def test_401_message_says_what_to_send(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings, api_token="t")) as (_, client):
        missing = (await client.get("/v1/models")).json()["error"]["message"]
        wrong = (await client.get("/v1/models", headers={"Authorization": "Bearer x"})).json()
        assert "Authorization: Bearer" in missing
        assert wrong["error"]["message"] == "invalid bearer token"
        assert "t" not in wrong["error"]["message"].split()


async def test_routes_added_after_build_are_protected_too(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings, api_token="t")) as (app, client):
        app.add_api_route("/late", lambda: {"ok": True}, methods=["GET"])
        assert (await client.get("/late")).status_code == 401
        ok = await client.get("/late", headers={"Authorization": "Bearer t"})
        assert ok.json() == {"ok": True}


@pytest.mark.parametrize("path", ["/v1/models", "/metrics"])
async def test_without_tokens_nothing_is_protected(settings, path: str) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings)) as (_, client):
        r = await client.get(path)
        assert r.status_code == 200 and r.content
