"""The SSE parsing used by the CLI's --server mode, and Last-Event-ID handling."""

from __future__ import annotations

import pytest

from evalserve.errors import InvalidInputError
from evalserve.jobs.remote import SSELineBuffer, is_final, parse_sse
from evalserve.server.sse import parse_last_event_id

STREAM = """: ping

id: 1
event: batch_complete
data: {"batch_number": 1}

id: 2
event: error
data: {"error": {"message": "hook"}, "hook": "h"}

event: message
data: not json
data: two lines

id: 3
event: complete
data: {"status": "completed"}

"""


def test_parse_sse_events() -> None:
    events = list(parse_sse(STREAM.splitlines()))
    assert [(e.id, e.event) for e in events] == [("1", "batch_complete"), ("2", "error"),
                                                 (None, "message"), ("3", "complete")]
    assert events[0].data == {"batch_number": 1}
    assert events[2].data == "not json\ntwo lines"
    assert [is_final(e) for e in events] == [False, False, False, True]
    buffer = SSELineBuffer()
    fed = [m for line in STREAM.splitlines() for m in buffer.feed(line)]
    assert [(m.id, m.event, m.data) for m in fed] == [(e.id, e.event, e.data) for e in events]


def test_last_event_id_from_query_or_header() -> None:
    assert parse_last_event_id(None, None) == 0
    assert parse_last_event_id(None, " 7 ") == 7
    assert parse_last_event_id("3", "7") == 3
    with pytest.raises(InvalidInputError, match="'x' is not an event id"):
        parse_last_event_id(None, "x")
    with pytest.raises(InvalidInputError, match="positive"):
        parse_last_event_id("-1", None)
