"""Reading a `text/event-stream` (the job stream `GET /stream/{job_id}`) into messages."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEMessage", "SSELineBuffer", "parse_sse", "is_final"]


@dataclass
class SSEMessage:
    """One received server-sent event (`data` parsed as JSON when it is JSON)."""

    event: str
    data: Any
    id: str | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[SSEMessage]:
    """Events from the lines of a `text/event-stream` (comments and pings skipped)."""
    event, data, event_id = "message", [], None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                yield SSEMessage(event, value, event_id)
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


class SSELineBuffer:
    """Feeds lines one at a time to `parse_sse` semantics (for async streams)."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def feed(self, line: str) -> list[SSEMessage]:
        """The messages that `line` completes (none until a blank line ends one)."""
        self._lines.append(line)
        if line.strip():
            return []
        lines, self._lines = self._lines, []
        return list(parse_sse(lines))


def is_final(message: SSEMessage) -> bool:
    """Whether a job stream ends after this event (`complete`, `cancelled`, a failed job)."""
    if message.event in ("complete", "cancelled"):
        return True
    return (message.event == "error" and isinstance(message.data, dict)
            and message.data.get("status") == "failed")
