"""What MLflow's judges send to evalserve: checked against a recording stub server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from evalserve.tracking.judges import (
    chat_completions_url,
    make_evalserve_judge,
    metric_response_format,
)


@pytest.mark.parametrize("base", ["http://h:8000", "http://h:8000/", "http://h:8000/v1",
                                  "http://h:8000/v1/chat/completions"])
def test_chat_completions_url(base) -> None:
    assert chat_completions_url(base) == "http://h:8000/v1/chat/completions"


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                          "body": body})
        content = json.dumps({"result": 4, "rationale": "Mostly right."})
        out = json.dumps({
            "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def stub() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_make_judge_sends_our_schema_to_evalserve(stub: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    judge = make_evalserve_judge("quality", "Rate {{ outputs }} for {{ inputs }}.",
                                 base_url=stub, model="smol", api_key="secret",
                                 scale=(1, 5), max_tokens=64, max_rationale_chars=120)
    feedback = judge(inputs={"question": "2+2?"}, outputs="4")
    assert feedback.value == 4 and feedback.rationale == "Mostly right."
    [request] = _Recorder.seen
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer secret"
    body = request["body"]
    assert body["model"] == "smol" and body["max_tokens"] == 64 and body["temperature"] == 0.0
    schema = body["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == ["result", "rationale"]
    assert schema["properties"]["result"]["enum"] == [1, 2, 3, 4, 5]
    assert schema["properties"]["rationale"]["maxLength"] == 120
    assert "2+2?" in body["messages"][-1]["content"]


def test_metric_response_format_matches_mlflow_parser() -> None:
    fmt = metric_response_format(scale=(0, 3), max_justification_chars=50)
    schema = fmt["json_schema"]["schema"]
    assert fmt["type"] == "json_schema" and schema["required"] == ["score", "justification"]
    assert schema["properties"]["score"]["enum"] == [0, 1, 2, 3]
    from mlflow.metrics.genai.genai_metric import _extract_score_and_justification

    assert _extract_score_and_justification(json.dumps({"score": 2, "justification": "ok"})) \
        == (2, "ok")


def test_a_wide_integer_scale_is_a_range_not_a_huge_enum() -> None:
    """Defect (issue 11, poison jobs): the response format listed every integer of the scale,
    so `scale=(0, 10**9)` built a billion-element enum."""
    fmt = metric_response_format(scale=(0, 10**9), max_justification_chars=50)
    score = fmt["json_schema"]["schema"]["properties"]["score"]
    assert score == {"type": "integer", "minimum": 0, "maximum": 10**9}
    assert metric_response_format(scale=(0, 100))["json_schema"]["schema"]["properties"][
        "score"]["enum"] == list(range(101))
