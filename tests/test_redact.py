"""Credentials taken out of URIs: userinfo masked, secret-looking query parameters dropped."""

from __future__ import annotations

import pytest

from evalserve.redact import redact_text, redact_url


@pytest.mark.parametrize(("url", "expected"), [
    ("https://user:pw@host/x?token=abc", "https://***@host/x"),
    ("https://user:pw@host:5000/x", "https://***@host:5000/x"),
    ("http://tok@host/", "http://***@host/"),
    ("https://host/x?page=2&access_token=s3cr3t&api_key=k", "https://host/x?page=2"),
    ("https://host/x?X-Amz-Signature=abc&region=eu", "https://host/x?region=eu"),
    ("postgresql://admin:hunter2@db.internal:5432/mlflow", "postgresql://***@db.internal:5432/mlflow"),
    ("databricks://profile", "databricks://profile"),
    ("https://host/mlflow", "https://host/mlflow"),
    ("sqlite:////data/mlflow.db", "sqlite:////data/mlflow.db"),
    ("/data/mlruns", "/data/mlruns"),
    ("https://u:p@ss@host/x", "https://***@host/x"),  # an unencoded @ in the password
])
def test_redact_url_masks_userinfo_and_drops_secret_parameters(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_an_unparseable_uri_keeps_neither_userinfo_nor_query() -> None:
    assert redact_url("http://user:pw@[::1/x?token=t") == "http://***@[::1/x"


def test_redact_text_redacts_every_uri_in_a_message() -> None:
    text = ("MLflow tracking server https://bob:pw@mlflow.example/ is unreachable "
            "(ConnectError: https://bob:pw@mlflow.example/health?token=t); fix 'https://a:b@c/'")
    assert redact_text(text) == (
        "MLflow tracking server https://***@mlflow.example/ is unreachable "
        "(ConnectError: https://***@mlflow.example/health); fix 'https://***@c/'")
    assert "pw" not in redact_text(text)
    assert redact_text("no uri here: user:pw@host") == "no uri here: user:pw@host"
