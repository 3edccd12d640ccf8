"""Latency the gateway adds in proxy mode, and the latency of a response-cache hit.

Starts an upstream (default: a fast fake OpenAI server, so model noise does not hide the
gateway's cost; `--upstream model`: a real evalserve on the bundled model) and an evalserve
proxy (`VLLM_ENDPOINT` -> upstream) as separate processes, then sends N short non-streamed
completions, alternating direct and proxied so both see the same machine noise. Requests are
sampled (temperature 0.7, no seed) so the cache never answers them. Then N identical
temperature-0 requests to the proxy measure a cache hit.

Prints:
  proxy overhead   = median(proxied) - median(direct)       (bar: <= 3 ms)
  cache hit median = median latency of a cache hit           (bar: <= 2 ms)
  and the ratios proxied/direct and hit/miss.

Run: .venv/bin/python benchmarks/gateway_overhead.py [--requests 200] [--upstream fake|model]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FAKE_MODEL = "fake/bench-7b"


def fake_upstream_app():  # noqa: ANN201
    """A minimal ASGI OpenAI server: `/v1/models` and `/v1/completions` with canned JSON."""
    models = json.dumps({"object": "list", "data": [
        {"id": FAKE_MODEL, "object": "model", "created": 0, "owned_by": "bench"}]}).encode()

    async def app(scope, receive, send):  # noqa: ANN001, ANN202
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["path"].endswith("/models"):
            body = models
        else:
            body = json.dumps({
                "id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": FAKE_MODEL, "choices": [{"index": 0, "text": " ok", "logprobs": None,
                                                  "finish_reason": "length"}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5},
            }).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "ab")
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=handle, stderr=handle,
                            cwd=ROOT)


def wait_ready(url: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


def evalserve(port: int, data: Path, extra: dict[str, str], log: Path) -> subprocess.Popen:
    env = {"PORT": str(port), "HOST": "127.0.0.1", "METRICS_PORT": "0", "LOG_LEVEL": "warning",
           "DATA_DIR": str(data), "RATE_LIMITS": "*=100000000/minute",
           "MODEL_CACHE_DIR": str(ROOT / ".cache" / "models"), **extra}
    return spawn([sys.executable, "-m", "evalserve", "serve"], env, log)


def timed(client: httpx.Client, url: str, body: dict) -> float:
    start = time.perf_counter()
    r = client.post(url, json=body)
    elapsed = time.perf_counter() - start
    r.raise_for_status()
    return elapsed * 1000


def main(n: int, upstream_kind: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    up_port, proxy_port = free_port(), free_port()
    procs = []
    try:
        if upstream_kind == "fake":
            procs.append(spawn([sys.executable, "-c",
                                "import uvicorn, sys; sys.path.insert(0, 'benchmarks');"
                                "from gateway_overhead import fake_upstream_app;"
                                f"uvicorn.run(fake_upstream_app(), host='127.0.0.1', "
                                f"port={up_port}, log_level='warning')"], {}, work / "up.log"))
            wait_ready(f"http://127.0.0.1:{up_port}/v1/models")
            model = FAKE_MODEL
        else:
            procs.append(evalserve(up_port, work / "up", {}, work / "up.log"))
            wait_ready(f"http://127.0.0.1:{up_port}/v1/models")
            model = "SmolLM2-135M-Instruct"
        procs.append(evalserve(proxy_port, work / "proxy",
                               {"VLLM_ENDPOINT": f"http://127.0.0.1:{up_port}/v1"},
                               work / "proxy.log"))
        wait_ready(f"http://127.0.0.1:{proxy_port}/v1/models")
        direct_url = f"http://127.0.0.1:{up_port}/v1/completions"
        proxy_url = f"http://127.0.0.1:{proxy_port}/v1/completions"

        direct, proxied, hits = [], [], []
        with httpx.Client(timeout=60) as client:
            for i in range(10):  # warm connections and code paths
                body = {"model": model, "prompt": f"warm {i}", "max_tokens": 1,
                        "temperature": 0.7}
                timed(client, direct_url, body)
                timed(client, proxy_url, body)
            for i in range(n):
                body = {"model": model, "prompt": f"Item {i}: the answer is", "max_tokens": 1,
                        "temperature": 0.7}
                if i % 2:
                    direct.append(timed(client, direct_url, body))
                    proxied.append(timed(client, proxy_url, body))
                else:
                    proxied.append(timed(client, proxy_url, body))
                    direct.append(timed(client, direct_url, body))
            same = {"model": model, "prompt": "cache hit", "max_tokens": 1, "temperature": 0}
            miss = timed(client, proxy_url, same)
            for _ in range(n):
                r_start = time.perf_counter()
                r = client.post(proxy_url, json=same)
                hits.append((time.perf_counter() - r_start) * 1000)
                assert r.headers["x-cache"] == "hit"

        d, p, h = (statistics.median(x) for x in (direct, proxied, hits))
        what = ("canned JSON, no model" if upstream_kind == "fake"
                else "real evalserve, bundled model, max_tokens=1")
        print(f"upstream: {upstream_kind} ({what})")
        print(f"requests: {n} direct + {n} proxied (interleaved), {n} cache hits; "
              f"machine shared and noisy")
        print(f"median direct   : {d:7.2f} ms   (p90 {_p90(direct):.2f})")
        print(f"median proxied  : {p:7.2f} ms   (p90 {_p90(proxied):.2f})")
        print(f"proxy overhead  : {p - d:7.2f} ms   (bar <= 3 ms)  ratio proxied/direct "
              f"{p / d:.2f}x")
        print(f"cache hit median: {h:7.2f} ms   (bar <= 2 ms)  ratio hit/proxied-miss "
              f"{h / p:.2f}x  (first miss {miss:.2f} ms)")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--upstream", choices=["fake", "model"], default="fake")
    args = parser.parse_args()
    main(args.requests, args.upstream)
