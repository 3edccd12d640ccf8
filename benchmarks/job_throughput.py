"""Job service throughput, SSE latency and memory, measured side by side in one run.

    python benchmarks/job_throughput.py [--items 64] [--memory-items 20000]

1. Full service: a real `evalserve serve` process on the bundled model; HTTP `POST /evaluate`
   of N items, SSE followed to `complete`. Items/s.
2. The same judge prompts sent straight to the engine (in this process, same settings) with its
   best batching: all at once through `generate_many`. Items/s. Ratio 1/2, bar >= 0.9.
3. The seed's design on the same engine: sequential batches of 10 (submit 10, wait, next 10).
   Ratio 1/3, bar >= 1.5.
4. SSE delivery latency of the service run: the event row's commit time (stored in the job
   database) to the client receiving it; p50/p95, bar p95 < 50 ms.
5. Resident memory growth of a server process over a 20,000-item job on a fast scripted engine
   (no model: isolates the service's own memory), bar <= 300 MB.

The machine may be shared: numbers are only comparable within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL_CACHE = ROOT / ".cache" / "models"

#: teacher-eval-ca with a short feedback so that a small MAX_NEW_TOKENS holds the answer.
RUBRIC = {
    "name": "bench-short", "fields": ["id_alumno", "curso", "consigna", "respuesta"],
    "id_field": "id_alumno", "scale": [0, 1, 2, 3, 4, 5], "language": "ca",
    "score_field": "nota", "feedback_field": "feedback", "max_feedback_chars": 40,
    "instructions": "Ets un professor. Posa una nota de {scale_min} a {scale_max} i un feedback "
                    "breu en català.",
    "template": "Curs: {curso}\nConsigna: {consigna}\nResposta: {respuesta}",
}


def items(n: int) -> list[dict[str, str]]:
    topics = [("Explica la fotosíntesi", "Les plantes fan menjar amb la llum del sol."),
              ("Què és un volcà?", "Una muntanya que treu lava i cendra."),
              ("Per què plou?", "L'aigua s'evapora, es condensa i cau.")]
    return [{"id_alumno": f"B{i:05d}", "curso": ["1r ESO", "3r ESO"][i % 2],
             "consigna": topics[i % 3][0], "respuesta": f"{topics[i % 3][1]} ({i})"}
            for i in range(n)]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, env: dict[str, str], args: list[str] | None = None
                 ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    full_env = {**os.environ, "DATA_DIR": str(data_dir), "MODEL_CACHE_DIR": str(MODEL_CACHE),
                "METRICS_PORT": "0", "HOST": "127.0.0.1", "PORT": str(port),
                "LOG_LEVEL": "warning", **env}
    cmd = args or [sys.executable, "-m", "evalserve", "serve"]
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL,
                            stderr=open(data_dir.parent / "server.log", "ab"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited; see {data_dir.parent / 'server.log'}")
        try:
            if httpx.get(url + "/health", timeout=2).json().get("model_loaded"):
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


def run_job(url: str, body: dict[str, Any]) -> tuple[float, dict[int, float], str]:
    """Submit, follow to `complete`; (seconds, receive wall time per event id, job id)."""
    from evalserve.client.sse import parse_sse

    start = time.perf_counter()
    job_id = httpx.post(url + "/evaluate", json=body, timeout=300).json()["job_id"]
    received: dict[int, float] = {}
    with httpx.stream("GET", f"{url}/stream/{job_id}",
                      timeout=httpx.Timeout(30, read=3600)) as response:
        for message in parse_sse(response.iter_lines()):
            received[int(message.id)] = time.time()
            if message.event in ("complete", "cancelled", "error"):
                if message.event != "complete":
                    raise RuntimeError(f"job ended {message.event}: {message.data}")
                break
    return time.perf_counter() - start, received, job_id


def event_latencies(db: Path, job_id: str, received: dict[int, float]) -> list[float]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, created_at FROM events WHERE job_id = ?", (job_id,))
        return [received[i] - t for i, t in rows if i in received]


async def direct_runs(n: int, max_tokens: int | None) -> tuple[float, float]:
    """(all at once, sequential batches of 10) seconds for the judge's first requests."""
    from evalserve.engines.base import GenerationRequest, OutputConstraint
    from evalserve.engines.registry import create_engine
    from evalserve.judge.judge import Judge
    from evalserve.judge.prompts import output_schema
    from evalserve.judge.rubric import load_rubric
    from evalserve.settings import load_settings

    settings = load_settings(model_cache_dir=MODEL_CACHE)
    engine = create_engine(settings)
    await engine.start()
    rubric = load_rubric(RUBRIC)
    judge = Judge(engine, rubric, max_tokens=max_tokens)
    constraint = OutputConstraint(json_schema=output_schema(rubric))

    def requests() -> list[GenerationRequest]:
        return [GenerationRequest(messages=judge.messages(item), max_tokens=judge.max_tokens,
                                  temperature=0.0, constraint=constraint,
                                  logprobs=20 if engine.supports_logprobs else None)
                for item in items(n)]

    try:
        await engine.generate_many(requests()[: min(n, 8)])  # warm-up
        start = time.perf_counter()
        await engine.generate_many(requests())
        all_at_once = time.perf_counter() - start
        batch = requests()
        start = time.perf_counter()
        for i in range(0, n, 10):
            await engine.generate_many(batch[i:i + 10])
        seed_batches = time.perf_counter() - start
    finally:
        await engine.close()
    return all_at_once, seed_batches


def memory_run(n: int) -> dict[str, float]:
    """A server process on the scripted fast engine; its RSS while a job of n items runs."""
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        proc, url = start_server(data, {"BATCH_SIZE": "10"},
                                 [sys.executable, __file__, "--fast-server"])
        try:
            ps = psutil.Process(proc.pid)
            baseline = ps.memory_info().rss
            peak = [baseline]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], ps.memory_info().rss)
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            seconds, _, _ = run_job(url, {"items": items(n)})
            done.set()
            sampler.join()
            return {"items": n, "seconds": seconds, "baseline_mb": baseline / 2**20,
                    "peak_mb": peak[0] / 2**20, "growth_mb": (peak[0] - baseline) / 2**20}
        finally:
            proc.terminate()
            proc.wait(30)


def fast_server() -> None:
    """`evalserve serve` on an engine that answers at once (for the memory measurement)."""
    import uvicorn

    from evalserve.engines.base import (
        CompletionOutput,
        Engine,
        EngineHealth,
        GenerationRequest,
        GenerationResult,
    )
    from evalserve.server.app import build_app
    from evalserve.settings import load_settings

    class FastEngine(Engine):
        capacity = 64
        supports_logprobs = False

        @property
        def model_id(self) -> str:
            return "fast"

        async def generate(self, request: GenerationRequest) -> GenerationResult:
            await asyncio.sleep(0)
            text = json.dumps({"feedback": "Bon treball.", "nota": 4})
            return GenerationResult(request.request_id,
                                    [CompletionOutput(text, "stop", 8)], 32)

        async def stream(self, request):  # noqa: ANN001, ANN201
            raise NotImplementedError

        async def abort(self, request_id: str) -> None:
            pass

        async def health(self) -> EngineHealth:
            return EngineHealth(loaded=True, device="cpu", gpu_available=False)

    settings = load_settings()
    uvicorn.run(build_app(settings, engine=FastEngine()), host=settings.host,
                port=settings.port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description="job service throughput, latency, memory")
    parser.add_argument("--items", type=int, default=64, help="items on the real model")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="cap the judge's output (default: the judge's own budget, which "
                             "fits the rubric's feedback so no answer is cut)")
    parser.add_argument("--memory-items", type=int, default=20_000)
    parser.add_argument("--fast-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fast_server:
        fast_server()
        return

    n = args.items
    print(f"# job_throughput: {n} items on the bundled model, MAX_NEW_TOKENS="
          f"{args.max_new_tokens}; {os.cpu_count()} CPUs (shared machine: compare within run)")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        env = {} if args.max_new_tokens is None else {"MAX_NEW_TOKENS": str(args.max_new_tokens)}
        proc, url = start_server(data, env)
        try:
            run_job(url, {"items": items(4), "rubric": RUBRIC})  # warm-up
            service_s, received, job_id = run_job(url, {"items": items(n), "rubric": RUBRIC})
            latencies = event_latencies(data / "evalserve.db", job_id, received)
        finally:
            proc.terminate()
            proc.wait(30)
    all_at_once_s, seed_s = asyncio.run(direct_runs(n, args.max_new_tokens))
    service, direct, seed = n / service_s, n / all_at_once_s, n / seed_s
    print(f"service (HTTP + SSE)        {service:8.3f} items/s ({service_s:.1f} s)")
    print(f"engine generate_many (all)  {direct:8.3f} items/s ({all_at_once_s:.1f} s)")
    print(f"seed design (batches of 10) {seed:8.3f} items/s ({seed_s:.1f} s)")
    print(f"ratio service / direct      {service / direct:8.3f}  (bar >= 0.9)")
    print(f"ratio service / seed        {service / seed:8.3f}  (bar >= 1.5)")
    lat = sorted(x * 1000 for x in latencies)
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    print(f"SSE latency (event stored -> received), {len(lat)} events: "
          f"p50 {statistics.median(lat):.1f} ms, p95 {p95:.1f} ms  (bar < 50 ms)")
    mem = memory_run(args.memory_items)
    print(f"memory over a {mem['items']}-item job (fast scripted engine, no model): "
          f"baseline {mem['baseline_mb']:.0f} MB, peak {mem['peak_mb']:.0f} MB, growth "
          f"{mem['growth_mb']:.0f} MB in {mem['seconds']:.1f} s "
          f"({mem['items'] / mem['seconds']:.0f} items/s)  (bar <= 300 MB)")


if __name__ == "__main__":
    main()
