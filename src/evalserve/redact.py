"""Credentials taken out of URIs before a client can see them.

`MLFLOW_TRACKING_URI`, `VLLM_ENDPOINT` and database URLs may carry `user:password@` or a token
in the query string. `redact_url` masks the userinfo and drops secret-looking query
parameters (`https://user:pw@host/x?token=abc&page=2` -> `https://***@host/x?page=2`);
`redact_text` does the same to every URI inside a message (an exception text, an error).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["redact_url", "redact_text", "MASK"]

#: What replaces the userinfo of a URI.
MASK = "***"

# Query parameter names that carry secrets (matched as a part of the lowercased name, so
# `access_token`, `X-Amz-Signature`, `api_key` and `sas_sig` are all caught).
_SECRET_PARAM = re.compile(
    r"token|secret|passw|pwd|key|auth|sig|credential|session|cookie|jwt|bearer", re.IGNORECASE)
_URI = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`();]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@?#]*@")


def redact_url(url: str) -> str:
    """`url` without its userinfo (masked as `***@`) and without secret-looking query
    parameters (and fragment); any other URI, or a plain path, is returned unchanged."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            kept = [(k, v) for k, v in pairs if not _SECRET_PARAM.search(k)]
            if len(kept) != len(pairs):
                query = urlencode(kept)
        fragment = "" if _SECRET_PARAM.search(parts.fragment) else parts.fragment
        if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
            return url  # nothing secret: as written (urlunsplit would fold `sqlite:////`)
        return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    except ValueError:  # not parseable (a broken IPv6 host, ...): keep the scheme only
        masked = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", url)
        return masked.split("?", 1)[0]


def redact_text(text: str) -> str:
    """`text` with every URI in it passed through `redact_url`."""
    if "://" not in text:
        return text
    def one(match: re.Match[str]) -> str:
        uri = match.group(0)
        stripped = uri.rstrip(".,:")  # sentence punctuation after a URI is not part of it
        return redact_url(stripped) + uri[len(stripped):]

    return _URI.sub(one, text)
