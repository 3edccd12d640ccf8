"""A real OpenAI-shaped HTTP server for the tracing tests (a thread on 127.0.0.1): it records
the `traceparent` of every request, and can hold requests to stop a job midway."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAI", "MODEL"]

MODEL = "org/judge-7b"


class FakeOpenAI:
    """`GET /v1/models` lists `MODEL`; `POST /v1/chat/completions` answers `reply` with usage
    7 + 2. After `answer` chat requests (None: no limit) the next ones wait until `release()`.

    `chats`: the `traceparent` header (or None) of every chat request, in arrival order."""

    def __init__(self, reply: str, *, answer: int | None = None) -> None:
        self.reply = reply
        self.answer = answer
        self.chats: list[str | None] = []
        self.waiting = 0
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The `/v1` base URL (what `VLLM_ENDPOINT` takes)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def release(self) -> None:
        """Answer the held requests and every later one."""
        self._released.set()

    def chat(self, traceparent: str | None) -> dict[str, Any]:
        with self._lock:
            self.chats.append(traceparent)
            hold = self.answer is not None and len(self.chats) > self.answer
            self.waiting += hold
        if hold:
            self._released.wait(30)
            with self._lock:
                self.waiting -= 1
        message = {"role": "assistant", "content": self.reply}
        return {"id": "chat-1", "object": "chat.completion", "model": MODEL,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}


def _handler(upstream: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.rstrip("/") != "/v1/models":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            self._send(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 1, "owned_by": "test"}]})

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            self._send(200, upstream.chat(self.headers.get("traceparent")))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a stop)
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet

    return Handler
