"""Fair scheduling: a small job of one caller behind a big job of another.

    python benchmarks/fairness.py [--latency 0.1] [--capacity 4] [--small 10] [--big 2000]

A scripted engine answers every item after a fixed latency with at most `capacity` items in
flight (no model: it isolates the scheduler). The job service runs in this process on a real
SQLite store and the real judge.

1. The small job (owner B) alone: seconds from submission to its final event.
2. The big job (owner A) is submitted; 1 s later the small job (owner B) is: its seconds from
   submission to its final event, while the big job keeps running.

Prints both times and their ratio; bar: ratio <= 2 (the small job gets about half the engine
at once). Exits 1 above the bar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from evalserve.engines.base import (  # noqa: E402
    CompletionOutput,
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
)
from evalserve.jobs.config import RunnerConfig  # noqa: E402
from evalserve.jobs.grading import JudgeKit  # noqa: E402
from evalserve.jobs.service import JobService  # noqa: E402
from evalserve.jobs.sqlite import SQLiteJobStore  # noqa: E402

BAR = 2.0


class FixedLatencyEngine(Engine):
    """Answers teacher-eval-ca's schema after `latency` seconds; `capacity` items at once."""

    def __init__(self, latency: float, capacity: int) -> None:
        self.latency = latency
        self.capacity = capacity
        self.in_flight = 0
        self.peak = 0

    @property
    def model_id(self) -> str:
        return "fixed-latency"

    async def start(self) -> None:
        return None

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        text = json.dumps({"feedback": "Bon treball.", "nota": 4})
        return GenerationResult(request.request_id, [CompletionOutput(
            text=text, finish_reason="stop", completion_tokens=8)], 10)

    async def stream(self, request: GenerationRequest):  # noqa: ANN201 - unused here
        raise NotImplementedError

    async def abort(self, request_id: str) -> None:
        return None

    async def health(self) -> EngineHealth:
        return EngineHealth(loaded=True, device="cpu", gpu_available=False)

    async def close(self) -> None:
        return None


def items(n: int, tag: str) -> list[dict[str, str]]:
    return [{"id_alumno": f"{tag}{i:05d}", "curso": "3r ESO",
             "consigna": "Explica la fotosíntesi",
             "respuesta": f"Les plantes fan menjar amb la llum ({tag}{i})."} for i in range(n)]


async def until_final(service: JobService, job_id: str) -> str:
    last = ""
    async for event in service.follow(job_id):
        last = event.type
    return last


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    engine = FixedLatencyEngine(args.latency, args.capacity)

    async def ready() -> Engine:
        return engine

    with tempfile.TemporaryDirectory() as tmp:
        service = JobService(SQLiteJobStore(Path(tmp) / "jobs.db"), JudgeKit(), engine, ready,
                             RunnerConfig(batch_size=10), poll_interval=0.2)
        await service.start()
        try:
            warm = await service.submit(items(1, "W"), owner="B")  # connections, first plans
            await until_final(service, warm.job.id)
            t0 = time.perf_counter()
            alone = await service.submit(items(args.small, "S"), owner="B")
            assert await until_final(service, alone.job.id) == "complete"
            alone_s = time.perf_counter() - t0

            big = await service.submit(items(args.big, "L"), owner="A")
            await asyncio.sleep(1.0)
            t0 = time.perf_counter()
            small = await service.submit(items(args.small, "S"), owner="B")
            assert await until_final(service, small.job.id) == "complete"
            shared_s = time.perf_counter() - t0
            big_job = await service.get(big.job.id)
            await service.cancel(big.job.id)
        finally:
            await service.close()
    return {"alone_s": alone_s, "shared_s": shared_s, "ratio": shared_s / alone_s,
            "big_status_then": big_job.status.value, "big_done_then": big_job.completed,
            "peak_in_flight": engine.peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per item")
    parser.add_argument("--capacity", type=int, default=4, help="items in flight at most")
    parser.add_argument("--small", type=int, default=10, help="items of the small job")
    parser.add_argument("--big", type=int, default=2000, help="items of the big job")
    args = parser.parse_args()
    out = asyncio.run(measure(args))
    print(f"engine: {args.latency:g} s per item, capacity {args.capacity}; "
          f"peak in flight {out['peak_in_flight']}")
    print(f"{args.small}-item job alone:                         {out['alone_s']:.3f} s")
    print(f"{args.small}-item job 1 s after a {args.big}-item job of another owner: "
          f"{out['shared_s']:.3f} s (the big job was {out['big_status_then']}, "
          f"{out['big_done_then']} items done)")
    verdict = "ok" if out["ratio"] <= BAR else "ABOVE THE BAR"
    print(f"ratio {out['ratio']:.2f} (bar <= {BAR:g}): {verdict}")
    return 0 if out["ratio"] <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
