"""The router for real: three fake OpenAI upstreams (separate processes, each counting its
requests), a real `evalserve serve` with `UPSTREAMS_FILE`, and the official `openai` client.

300 concurrent requests split by the weights; one upstream SIGKILLed in the middle of 300 more
without a failed client request, then probed back in when it returns; a 4xx passed on once;
fallbacks; `/v1/models`; seed 001's tier applied to a routed model by its upstream's size.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import ROOT
from tests.e2e.server import ServerProcess, free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

REQUESTS = 300


def fake_upstream():  # noqa: ANN201
    """An ASGI OpenAI server (`uvicorn --factory`): `/v1/models`, chat completions answering
    its `FAKE_NAME` after `FAKE_DELAY` seconds (a 400 for a message containing REJECT), and
    `/stats` with the requests it received."""
    name, delay = os.environ["FAKE_NAME"], float(os.environ["FAKE_DELAY"])
    stats = {"requests": 0, "rejected": 0}

    async def reply(send, status: int, payload: dict) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        if path.endswith("/models"):
            return await reply(send, 200, {"object": "list", "data": [{"id": name}]})
        if path == "/stats":
            return await reply(send, 200, stats)
        request = json.loads(body)
        if "REJECT" in json.dumps(request.get("messages")):
            stats["rejected"] += 1
            return await reply(send, 400, {"error": {"message": "rejected by the upstream"}})
        stats["requests"] += 1
        await asyncio.sleep(delay)
        await reply(send, 200, {
            "id": "x", "object": "chat.completion", "model": request["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": name},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})

    return app


class Upstream:
    """One fake upstream process on a fixed port (restartable on the same port)."""

    def __init__(self, name: str, log: Path, delay: float) -> None:
        self.name, self.log, self.delay = name, log, delay
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Upstream:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "tests.e2e.test_router:"
                 "fake_upstream", "--host", "127.0.0.1", "--port", str(self.port),
                 "--log-level", "warning"], cwd=ROOT, stdout=log, stderr=log,
                env={**os.environ, "FAKE_NAME": self.name, "FAKE_DELAY": str(self.delay)})
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        wait_for(self._ready, 60, f"fake upstream {self.name} listening")

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        try:
            return httpx.get(self.url + "/v1/models", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stats(self) -> dict[str, int]:
        return httpx.get(self.url + "/stats", timeout=5).json()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def upstreams(tmp_path: Path) -> Iterator[list[Upstream]]:
    started = [Upstream(n, tmp_path / f"{n}.log", 0.25).start(wait=False)
               for n in ("up-a", "up-b", "up-c")]
    for upstream in started:  # started together: each takes seconds to import
        upstream.wait_ready()
    yield started
    for upstream in started:
        upstream.kill()


def router_server(server_factory, tmp_path: Path, upstreams: list[Upstream],  # noqa: ANN001
                  weights: tuple[int, int, int]) -> ServerProcess:
    dead = free_port()  # nothing listens there
    lines = ["models:", "  - name: judge", "    rate_limit: 100000/minute", "    endpoints:"]
    for upstream, weight in zip(upstreams, weights):
        lines += [f"      - url: {upstream.url}/v1", f"        weight: {weight}",
                  "        max_concurrency: 400", "        api_key: ${ROUTER_TEST_KEY}"]
    lines += ["  - name: judge-small", "    fallbacks: [judge]",
              "    rate_limit: 100000/minute",
              f"    endpoints: [{{url: 'http://127.0.0.1:{dead}/v1'}}]",
              "  - name: tiny", "    endpoints:",
              f"      - url: {upstreams[0].url}/v1",
              "        upstream_model: org/Tiny-70B-Instruct",
              "health_check_interval: 0.5", "probe_backoff: 0.2", "probe_backoff_max: 0.5"]
    path = tmp_path / "upstreams.yaml"
    path.write_text("\n".join(lines) + "\n")
    return server_factory(env={"UPSTREAMS_FILE": str(path), "ROUTER_TEST_KEY": "k",
                               "UPSTREAM_TIMEOUT": "30"})


async def fire(server: ServerProcess, count: int, model: str = "judge") -> list:
    """`count` concurrent chat requests through the official client: answers or exceptions."""
    async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0,
                                  timeout=60) as client:
        return await asyncio.gather(*(client.chat.completions.create(
            model=model, max_tokens=4, temperature=0.7,
            messages=[{"role": "user", "content": f"item {i}"}]) for i in range(count)),
            return_exceptions=True)


def failures(answers: list) -> list:
    return [a for a in answers if isinstance(a, BaseException)]


def health(server: ServerProcess) -> dict:
    return httpx.get(server.url + "/health", timeout=5).json()


async def test_weights_models_client_errors_fallbacks_and_tiers(
        server_factory, tmp_path: Path, upstreams: list[Upstream]) -> None:  # noqa: ANN001
    server = router_server(server_factory, tmp_path, upstreams, (1, 2, 3))
    sync = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    try:
        assert [m.id for m in sync.models.list().data] == ["judge", "judge-small", "tiny"]

        answers = await fire(server, REQUESTS)
        assert failures(answers) == []
        counts = [u.stats()["requests"] for u in upstreams]
        assert sum(counts) == REQUESTS
        for count, weight in zip(counts, (1, 2, 3)):  # within 10% of each weight's share
            assert abs(count - REQUESTS * weight / 6) <= 0.1 * REQUESTS * weight / 6, counts
        assert sorted({a.choices[0].message.content for a in answers}) == [
            "up-a", "up-b", "up-c"]

        with pytest.raises(openai.BadRequestError, match="rejected by the upstream"):
            sync.chat.completions.create(model="judge", max_tokens=2, messages=[
                {"role": "user", "content": "REJECT this"}])
        assert sum(u.stats()["rejected"] for u in upstreams) == 1  # passed on, not retried

        # judge-small's only endpoint is down: its fallback answers
        small = sync.chat.completions.create(model="judge-small", max_tokens=2, messages=[
            {"role": "user", "content": "hello"}])
        assert small.choices[0].message.content in {"up-a", "up-b", "up-c"}
        status = {e["model"]: e for e in health(server)["upstreams"]}
        assert status["judge-small"]["healthy"] is False and status["judge"]["healthy"]

        # "tiny" names no size; its upstream is a 70B: seed 001's 20/minute applies
        answers = await fire(server, 21, model="tiny")
        refused = failures(answers)
        assert len(refused) == 1 and isinstance(refused[0], openai.RateLimitError)
        assert "20 per 1 minute" in str(refused[0])
        with pytest.raises(openai.NotFoundError, match="not served here; use one of: judge, "
                                                       "judge-small, tiny"):
            sync.chat.completions.create(model="nope", max_tokens=2, messages=[
                {"role": "user", "content": "hello"}])
    finally:
        sync.close()


async def test_an_upstream_killed_during_300_requests_fails_none(
        server_factory, tmp_path: Path, upstreams: list[Upstream]) -> None:  # noqa: ANN001
    server = router_server(server_factory, tmp_path, upstreams, (1, 1, 1))
    victim = upstreams[1]

    async def kill_midway() -> int:
        """Kill the victim once it has received 20 requests; what it had received by then."""
        def received() -> int:
            return victim.stats()["requests"]

        while (seen := await asyncio.to_thread(received)) < 20:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(victim.kill)
        return seen

    answers, seen = await asyncio.gather(fire(server, REQUESTS), kill_midway())
    assert failures(answers) == [], failures(answers)[:3]
    assert len(answers) == REQUESTS
    by_victim = sum(a.choices[0].message.content == victim.name for a in answers)
    assert by_victim < seen  # requests in flight at the victim when it died were answered
    survivors = sum(u.stats()["requests"] for u in upstreams if u is not victim)
    assert survivors == REQUESTS - by_victim  # ... by the others
    ours = next(e for e in health(server)["upstreams"] if e["url"] == victim.url + "/v1")
    assert ours["healthy"] is False and ours["last_error"]

    victim.start()  # back on the same port: probed back into rotation
    server.wait_for(lambda: all(e["healthy"] for e in health(server)["upstreams"]
                                if e["model"] == "judge"), 20, "the victim back in rotation")
    answers = await fire(server, 30)
    assert failures(answers) == [] and victim.stats()["requests"] > 0
