"""Latency the router adds: a request to a fake upstream directly vs through `RouterEngine`.

Starts one fast fake OpenAI server (`gateway_overhead.fake_upstream_app`, canned JSON, so model
noise does not hide the router's cost) as a separate process, then in one event loop sends N
short completions alternately through

  direct: an `OpenAIEngine` on the upstream (retries off, as the router's endpoints are), and
  router: a `RouterEngine` whose model has three endpoints (weights 1, 2, 3) on that upstream,

so both see the same machine noise. With `--http`, also two evalserve processes, one with
`VLLM_ENDPOINT` and one with `UPSTREAMS_FILE` (the same three endpoints), each asked N times
over HTTP, interleaved.

Prints the p50 of each, the added p50 (bar: <= 1 ms) and the ratio router/direct.

Run: .venv/bin/python benchmarks/router_latency.py [--requests 2000] [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_overhead import FAKE_MODEL, evalserve, free_port, spawn, wait_ready  # noqa: E402

from evalserve.engines.base import GenerationRequest  # noqa: E402
from evalserve.engines.openai import OpenAIEngine  # noqa: E402
from evalserve.engines.router import RouterEngine, UpstreamsConfig  # noqa: E402

WEIGHTS = (1, 2, 3)


def config(url: str) -> dict:
    return {"models": [{"name": "bench", "endpoints": [
        {"url": url, "upstream_model": FAKE_MODEL, "weight": w} for w in WEIGHTS]}]}


def yaml_of(url: str) -> str:
    lines = ["models:", "  - name: bench", "    endpoints:"]
    for w in WEIGHTS:
        lines += [f"      - url: {url}", f"        upstream_model: {FAKE_MODEL}",
                  f"        weight: {w}"]
    return "\n".join(lines) + "\n"


async def in_process(url: str, n: int) -> tuple[list[float], list[float]]:
    direct = OpenAIEngine(url, model=FAKE_MODEL, retries=0)
    router = RouterEngine(UpstreamsConfig.model_validate(config(url)))
    await router.start()
    times: dict[str, list[float]] = {"direct": [], "router": []}
    engines = {"direct": direct, "router": router}
    try:
        for i in range(n + 20):
            order = ("direct", "router") if i % 2 else ("router", "direct")
            for name in order:
                request = GenerationRequest(prompt=f"Item {i}: the answer is", max_tokens=1,
                                            temperature=0.7)
                start = time.perf_counter()
                await engines[name].generate(request)
                if i >= 20:  # the first 20 warm connections and code paths
                    times[name].append((time.perf_counter() - start) * 1000)
    finally:
        await router.close()
        await direct.close()
    return times["direct"], times["router"]


def over_http(url: str, n: int, work: Path) -> tuple[list[float], list[float]]:
    upstreams = work / "upstreams.yaml"
    upstreams.write_text(yaml_of(url))
    proxy_port, router_port = free_port(), free_port()
    procs = [evalserve(proxy_port, work / "proxy", {"VLLM_ENDPOINT": url}, work / "proxy.log"),
             evalserve(router_port, work / "router", {"UPSTREAMS_FILE": str(upstreams)},
                       work / "router.log")]
    try:
        urls = {"direct": f"http://127.0.0.1:{proxy_port}/v1/completions",
                "router": f"http://127.0.0.1:{router_port}/v1/completions"}
        models = {"direct": FAKE_MODEL, "router": "bench"}
        for port in (proxy_port, router_port):
            wait_ready(f"http://127.0.0.1:{port}/v1/models")
        times: dict[str, list[float]] = {"direct": [], "router": []}
        with httpx.Client(timeout=60) as client:
            for i in range(n + 20):
                order = ("direct", "router") if i % 2 else ("router", "direct")
                for name in order:
                    body = {"model": models[name], "prompt": f"Item {i}: the answer is",
                            "max_tokens": 1, "temperature": 0.7}
                    start = time.perf_counter()
                    client.post(urls[name], json=body).raise_for_status()
                    if i >= 20:
                        times[name].append((time.perf_counter() - start) * 1000)
        return times["direct"], times["router"]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)


def report(what: str, direct: list[float], routed: list[float]) -> None:
    d, r = statistics.median(direct), statistics.median(routed)
    print(f"{what}: {len(direct)} direct + {len(routed)} routed requests, interleaved")
    print(f"  p50 direct : {d:7.3f} ms")
    print(f"  p50 router : {r:7.3f} ms")
    print(f"  added p50  : {r - d:7.3f} ms   (bar <= 1 ms)   ratio router/direct {r / d:.3f}x")


def main(n: int, http: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="router-bench-"))
    port = free_port()
    upstream = spawn([sys.executable, "-c",
                      "import uvicorn, sys; sys.path.insert(0, 'benchmarks');"
                      "from gateway_overhead import fake_upstream_app;"
                      f"uvicorn.run(fake_upstream_app(), host='127.0.0.1', port={port}, "
                      "log_level='warning')"], {}, work / "upstream.log")
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(url + "/models")
        print("upstream: fake OpenAI server (canned JSON, no model), separate process; "
              "machine shared and noisy")
        report("in-process (OpenAIEngine vs RouterEngine over 3 endpoints)",
               *asyncio.run(in_process(url, n)))
        if http:
            report("over HTTP (evalserve VLLM_ENDPOINT vs evalserve UPSTREAMS_FILE)",
                   *over_http(url, n, work))
    finally:
        upstream.terminate()
        upstream.wait(15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()
    main(args.requests, args.http)
