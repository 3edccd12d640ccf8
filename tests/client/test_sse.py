"""`evalserve.client.sse`: the SSE parsing behind `evalserve evaluate --server`."""

from __future__ import annotations

import pytest

from evalserve.client.sse import SSELineBuffer, SSEMessage, is_final, parse_sse

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


def test_crlf_lines_and_a_stream_cut_before_its_blank_line() -> None:
    # sse-starlette ends lines with CRLF; an unterminated last event is not a message
    lines = ["event: complete\r\n", "data: {\"a\": 1}\r\n", "\r\n", "event: x\r\n", "data: 1"]
    assert [(m.event, m.data) for m in parse_sse(lines)] == [("complete", {"a": 1})]


@pytest.mark.parametrize(("message", "final"), [
    (SSEMessage("cancelled", {}), True),
    (SSEMessage("error", {"status": "failed", "error": {"message": "boom"}}), True),
    (SSEMessage("error", {"hook": "rouge"}), False),  # an item's hook failed: the job goes on
    (SSEMessage("error", "not an object"), False),
    (SSEMessage("batch_complete", {"status": "failed"}), False),
])
def test_is_final(message: SSEMessage, final: bool) -> None:
    assert is_final(message) is final
