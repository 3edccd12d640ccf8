"""What the fuzz tests judge a response by, and how they report what broke.

A response is acceptable when it is a 2xx with strict JSON (or SSE of strict JSON), a 4xx in
the error envelope with a message, or a 502/503/504 in the envelope (an upstream or a full
disk may fail one request). Anything else, a timeout included, is a `Failure`; failures are
grouped by route, status and message so that the report lists each distinct defect once, with
the smallest body that showed it and the tracebacks the server logged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Failure", "FailureLog", "judge_response", "server_tracebacks", "strict_json"]

#: 5xx statuses a request may answer with, in the envelope: upstream error, engine unavailable
#: or storage full, upstream timeout.
ALLOWED_5XX = frozenset({502, 503, 504})
_NUMBERS = re.compile(r"\d+(\.\d+)?")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def strict_json(text: str) -> Any:
    """`json.loads` that refuses `NaN`, `Infinity` and `-Infinity`, as browsers' JSON.parse does."""
    return json.loads(text, parse_constant=_reject_constant)


def _envelope_problem(response: httpx.Response) -> str | None:
    try:
        body = strict_json(response.text)
    except ValueError as exc:
        return f"error body is not JSON ({exc})"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(error) != {"message", "type", "code"}:
        return "error body is not the envelope {error: {message, type, code}}"
    if not isinstance(error["message"], str) or not error["message"].strip():
        return "error envelope has no message"
    return None


def _success_problem(response: httpx.Response) -> str | None:
    content_type = response.headers.get("content-type", "")
    try:
        if content_type.startswith("text/event-stream"):
            for line in response.text.splitlines():
                if line.startswith("data:") and line[5:].strip() != "[DONE]":
                    strict_json(line[5:].strip())
        elif content_type.startswith("application/json"):
            strict_json(response.text)
    except ValueError as exc:
        return f"2xx body is not strict JSON ({exc})"
    return None


def judge_response(response: httpx.Response) -> str | None:
    """Why `response` is unacceptable, or None when it is fine."""
    status = response.status_code
    if 200 <= status < 300:
        return _success_problem(response)
    if 400 <= status < 500 or status in ALLOWED_5XX:
        return _envelope_problem(response)
    return f"status {status}"


@dataclass
class Failure:
    """One unacceptable answer (or none: `status` 0 for a timeout or a dropped connection)."""

    method: str
    path: str
    body: str
    status: int
    response: str
    problem: str

    def key(self) -> tuple[str, str, int, str]:
        # numbers in messages (lengths, values echoed back) would split one defect into many
        return (self.method, self.path, self.status,
                _NUMBERS.sub("N", self.problem + " " + self.response[:160]))


@dataclass
class FailureLog:
    """Failures grouped by `Failure.key`: the smallest body of each group and its count.

    A sequence that throws in the batched decode loop can fail the requests batched with it,
    so a 500 seen under load may belong to another body: `replay` sends each failing body
    again, alone, and `report` lists first the failures that reproduce alone (the causes),
    then how many failed only in company."""

    groups: dict[tuple[str, str, int, str], tuple[Failure, int]] = field(default_factory=dict)
    seen: list[Failure] = field(default_factory=list)
    collateral: dict[str, int] = field(default_factory=dict)

    def add(self, failure: Failure) -> None:
        self.seen.append(failure)
        key = failure.key()
        smallest, count = self.groups.get(key, (failure, 0))
        if len(failure.body) < len(smallest.body):
            smallest = failure
        self.groups[key] = (smallest, count + 1)

    def replay(self, client: httpx.Client, limit: int = 80) -> None:
        """Send each distinct failing body alone; regroup by what it answers then."""
        under_load, self.groups = self.seen, {}
        self.seen = []
        bodies = {(f.method, f.path, f.body): f for f in under_load}
        for (method, path, body), first in list(bodies.items())[:limit]:
            try:
                response = client.request(method, path, content=body)
            except httpx.HTTPError as exc:
                self.add(Failure(method, path, body, 0, repr(exc), "no response, alone"))
                continue
            problem = judge_response(response)
            if problem:
                self.add(Failure(method, path, body, response.status_code, response.text,
                                 problem))
            else:
                label = f"{method} {path} {first.status or 'no response'}"
                self.collateral[label] = self.collateral.get(label, 0) + 1
        for failure in list(bodies.values())[limit:]:
            self.add(failure)  # not replayed: kept as seen under load

    def __bool__(self) -> bool:
        return bool(self.groups)

    def report(self, limit: int = 60) -> str:
        lines = [f"{len(self.groups)} distinct failures:"]
        for failure, count in list(self.groups.values())[:limit]:
            lines.append(
                f"- {failure.method} {failure.path} -> {failure.status or 'no response'} "
                f"({failure.problem}; seen {count}x)\n    body: {failure.body[:400]}\n"
                f"    response: {failure.response[:400]}"
            )
        if len(self.groups) > limit:
            lines.append(f"... and {len(self.groups) - limit} more groups")
        if self.collateral:
            lines.append("failed under load only, fine when sent alone (collateral of a cause "
                         "above, e.g. a batch aborted by one bad sequence): "
                         + ", ".join(f"{k} x{n}" for k, n in self.collateral.items()))
        return "\n".join(lines)


def server_tracebacks(log_path: Path, limit: int = 12) -> str:
    """The distinct tracebacks in a server log (by their last line), each cut to its end."""
    blocks: dict[str, str] = {}
    current: list[str] | None = None
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("Traceback (most recent call last):"):
            current = [line]
        elif current is not None:
            current.append(line)
            if line and not line[0].isspace():
                last = _NUMBERS.sub("N", line)
                blocks.setdefault(last, "\n".join(current[-14:]))
                current = None
    if not blocks:
        return "no traceback in the server log"
    shown = list(blocks.values())[:limit]
    more = f"\n... and {len(blocks) - limit} more" if len(blocks) > limit else ""
    return f"{len(blocks)} distinct tracebacks in the server log:\n" + "\n--\n".join(shown) + more
