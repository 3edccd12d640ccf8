"""What tracing costs the job runner: items/s with tracing off vs on, side by side in one run.

A `JobService` on SQLite grades N items on an in-process engine that answers at once, or after
`--latency` seconds. Zero latency is the worst case for tracing: the spans' cost is all there
is besides the runner. Runs alternate off, on, off, on, … (`--rounds` of each), so both see
the same machine noise. The median items/s and process CPU time per item of each are printed,
with the ratio on/off and the CPU tracing adds per item (the steadier number on a shared
machine: other processes slow the wall clock, not this process's CPU time).

- off: no tracer (what the server runs without `OTEL_EXPORTER_OTLP_ENDPOINT`).
- on: the server's provider (`evalserve.tracing.setup_tracing`) with its `BatchSpanProcessor`,
  over an exporter that drops what it gets (the cost of making and queueing spans, not of the
  network): 2 spans per item (`item`, `engine.generate`) and 1 per job.

Last, the two spans of an item are timed by themselves (no runner, no store).

With `OTEL_TRACES_SAMPLER=always_off` in the environment, "on" measures jobs whose trace is
not sampled: the tracer is on, the spans are not recorded.

Run: .venv/bin/python benchmarks/tracing_overhead.py [--items 2000] [--rounds 3] [--latency 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

from evalserve.engines.base import (  # noqa: E402
    CompletionOutput,
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    StreamDelta,
)
from evalserve.jobs.config import RunnerConfig  # noqa: E402
from evalserve.jobs.grading import JudgeKit  # noqa: E402
from evalserve.jobs.service import JobService  # noqa: E402
from evalserve.jobs.sqlite import SQLiteJobStore  # noqa: E402
from evalserve.settings import load_settings  # noqa: E402
from evalserve.tracing import setup_tracing, tracer_of  # noqa: E402

ANSWER = json.dumps({"feedback": "Bon treball.", "nota": 4})


class CannedEngine(Engine):
    """Answers every request with a valid teacher-eval-ca grade after `latency` seconds."""

    capacity = 32

    def __init__(self, latency: float) -> None:
        self.latency = latency

    @property
    def model_id(self) -> str:
        return "canned"

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return GenerationResult(request.request_id,
                                [CompletionOutput(ANSWER, "stop", 9)], 120)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        yield StreamDelta(ANSWER, "stop", prompt_tokens=120, completion_tokens=9)

    async def abort(self, request_id: str) -> None:
        return None

    async def health(self) -> EngineHealth:
        return EngineHealth(loaded=True, device="cpu", gpu_available=False)


class DroppingExporter(SpanExporter):
    """Takes every batch and drops it; counts the spans."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[object]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def items(n: int) -> list[dict[str, str]]:
    return [{"id_alumno": f"B{i:05d}", "curso": "3r ESO", "consigna": "Explica la fotosíntesi",
             "respuesta": f"Les plantes fan menjar amb la llum ({i})."} for i in range(n)]


async def one_run(n: int, latency: float, traced: bool,
                  workdir: Path) -> tuple[float, float, int]:
    """(items/s, CPU µs per item, spans exported) of one job of `n` items."""
    engine = CannedEngine(latency)
    exporter = DroppingExporter()
    provider = None
    if traced:
        # the server's provider and BatchSpanProcessor, with the exporter swapped for ours
        settings = load_settings(otel_exporter_otlp_endpoint="http://unused:4318",
                                 replica_id="bench")
        provider = setup_tracing(settings)
        assert provider is not None
        processor = provider._active_span_processor._span_processors[0]
        if hasattr(processor, "_batch_processor"):
            processor._batch_processor._exporter = exporter

    async def ready() -> Engine:
        return engine

    store = SQLiteJobStore(workdir / f"jobs-{time.monotonic_ns()}.db")
    service = JobService(store, JudgeKit(), engine, ready, RunnerConfig(batch_size=50),
                         max_items=n, runner_options={"tracer": tracer_of(provider)})
    await service.start()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        job = (await service.submit(items(n))).job
        async for event in service.follow(job.id):
            if event.final:
                break
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await service.close()
        if provider is not None:
            provider.shutdown()
    return n / seconds, cpu / n * 1e6, exporter.spans


async def spans_alone(n: int) -> float:
    """CPU µs per item of the runner's two spans by themselves: `traced_item` around an
    instant `TracedEngine.generate`, inside one `job` span, no runner, no store."""
    from types import SimpleNamespace

    from evalserve.jobs.models import Job, JobStatus, ResultRow
    from evalserve.jobs.spans import TracedEngine, traced_item
    from evalserve.tracing import span

    provider = setup_tracing(load_settings(otel_exporter_otlp_endpoint="http://unused:4318",
                                           replica_id="bench"))
    assert provider is not None
    processor = provider._active_span_processor._span_processors[0]
    if hasattr(processor, "_batch_processor"):
        processor._batch_processor._exporter = DroppingExporter()
    tracer = tracer_of(provider)
    engine = TracedEngine(CannedEngine(0.0), tracer)  # type: ignore[arg-type]
    job = Job("bench", JobStatus.RUNNING, "bench", {}, n)
    request = GenerationRequest(messages=[{"role": "user", "content": "x"}], max_tokens=16)

    async def grade(i: int) -> ResultRow:
        await engine.generate(request)
        return ResultRow(job.id, i, str(i), "scored", 4.0, {})

    with span(tracer, "job"):
        cpu = time.process_time()
        for i in range(n):
            pending = SimpleNamespace(idx=i, item_id=str(i))
            await traced_item(tracer, job, pending, grade(i))  # type: ignore[arg-type]
        cpu = time.process_time() - cpu
    provider.shutdown()
    return cpu / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds each engine call takes")
    args = parser.parse_args()
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        await one_run(200, args.latency, True, Path(tmp))  # warm-up: imports, first queries
        for _ in range(args.rounds):
            for traced in (False, True):
                rate, cpu, spans = await one_run(args.items, args.latency, traced, Path(tmp))
                rates[traced].append(rate)
                cpus[traced].append(cpu)
                if traced and "OTEL_TRACES_SAMPLER" not in os.environ:
                    assert spans >= 2 * args.items, f"only {spans} spans exported"
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"{args.items} items, engine latency {args.latency:g} s, {args.rounds} rounds")
    for label, traced, median in (("off", False, off), ("on: ", True, on)):
        runs = ", ".join(f"{r:.0f}" for r in rates[traced])
        print(f"tracing {label} {median:8.1f} items/s  {statistics.median(cpus[traced]):7.0f} µs "
              f"CPU/item   (runs: {runs})")
    added = statistics.median(cpus[True]) - statistics.median(cpus[False])
    print(f"ratio on/off items/s: {on / off:.3f}; CPU added by tracing: {added:.0f} µs per item")
    alone = await spans_alone(args.items)
    print(f"the item + engine.generate spans alone (no runner): {alone:.0f} µs CPU per item")


if __name__ == "__main__":
    asyncio.run(main())
