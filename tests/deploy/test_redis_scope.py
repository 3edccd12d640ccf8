"""Redis is the response cache and the rate-limit windows, nothing else: the deploy README and
docs say so, and this holds them to it. A module that starts using Redis (job events, say)
fails here until the docs and this list say what it keeps there."""

from __future__ import annotations

import ast
from pathlib import Path

import evalserve
from evalserve.settings import Settings

PACKAGE = Path(evalserve.__file__).parent

#: The modules that talk to Redis, and what they keep there.
REDIS_USERS = {
    "server/cache.py": "the response cache (vllm:v1:...)",
    "server/ratelimit.py": "the rate-limit windows (vllm:ratelimit...)",
}


def _uses_redis(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(alias.name.split(".")[0] == "redis" for alias in node.names):
                return True
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top == "redis" or (top == "limits" and "storage" in node.module):
                return True
        elif isinstance(node, ast.Attribute) and node.attr in ("redis_url", "redis_password"):
            return True
    return False


def test_only_the_cache_and_the_rate_limiter_use_redis() -> None:
    users = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
             if _uses_redis(ast.parse(path.read_text(encoding="utf-8")))}
    assert users == set(REDIS_USERS)


def test_the_redis_setting_says_the_same() -> None:
    doc = Settings.model_fields["redis_url"].description
    assert "cache" in doc and "rate-limit" in doc and "job store" in doc
