"""A direct request's latency while job work fills the embedded engine, with and without the
decode slots that background (job) sequences leave free (`INTERACTIVE_RESERVE`).

Background requests (`GenerationRequest.background`, what a job's judge sends) are kept at
twice the engine's capacity, resubmitted as they finish; a short direct request is timed
`--probes` times. Three runs, one after another in one process: `unmarked` (the load sent as
ordinary requests: one first-come queue, as before background requests existed), `no reserve`
(marked background: direct requests go first, but wait for a slot to free up) and `reserve`.

Prints the direct request's median time to first token (the wait for a decode slot plus its
prefill) and median total time of each run, and the ratios of the first two to `reserve`
(above 1: the direct request is served sooner with the reserve).

Run: .venv/bin/python benchmarks/interactive_latency.py [--capacity 8] [--reserve 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from evalserve.engines.base import GenerationRequest
from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.settings import load_settings


def background_request(i: int, max_tokens: int, marked: bool) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": f"Write a long story number {i} about a river."}],
        max_tokens=max_tokens, temperature=0.0, background=marked)


async def keep_busy(engine: TransformersEngine, count: int, max_tokens: int,
                    marked: bool) -> None:
    async def worker(i: int) -> None:
        # lengths spread over [max_tokens / 3, max_tokens]: slots free up at different steps,
        # as items of a real job do
        tokens = max(1, max_tokens // 3 + (i * max_tokens * 2 // 3) // max(1, count - 1))
        while True:
            await engine.generate(background_request(i, tokens, marked))

    async with asyncio.TaskGroup() as group:
        for i in range(count):
            group.create_task(worker(i))


async def median_latency(engine: TransformersEngine, probes: int, busy: int,
                         max_tokens: int, marked: bool) -> tuple[float, float]:
    load = asyncio.create_task(keep_busy(engine, busy, max_tokens, marked))
    try:
        # let the background work fill the batch before the first probe
        deadline = time.monotonic() + 60
        while engine.running < engine.capacity - engine.reserve and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        first, total = [], []
        for _ in range(probes):
            start = time.perf_counter()
            seen = None
            async for _delta in engine.stream(GenerationRequest(
                    messages=[{"role": "user", "content": "Say yes."}], max_tokens=4,
                    temperature=0.0)):
                seen = seen or time.perf_counter() - start
            first.append(seen or 0.0)
            total.append(time.perf_counter() - start)
        return statistics.median(first), statistics.median(total)
    finally:
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await load


async def main(capacity: int, reserve: int, probes: int, max_tokens: int) -> None:
    cache = Path(__file__).resolve().parent.parent / ".cache" / "models"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, slots, marked in (("unmarked", 0, False), ("no reserve", 0, True),
                                     ("reserve", reserve, True)):
            settings = load_settings(data_dir=tmp, model_cache_dir=cache,
                                     max_num_seqs=capacity, interactive_reserve=slots)
            engine = TransformersEngine.from_settings(settings)
            await engine.start()
            try:
                results[label] = await median_latency(engine, probes, 2 * capacity, max_tokens,
                                                      marked)
            finally:
                await engine.close()
    print(f"capacity {capacity}, reserve {reserve}, {probes} probes of 4 tokens, "
          f"background requests of {max_tokens} tokens")
    for label, (first, total) in results.items():
        print(f"{label:>10}: median first token {first:6.2f} s, median total {total:6.2f} s")
    first_r, total_r = results["reserve"]
    for label in ("unmarked", "no reserve"):
        first, total = results[label]
        print(f"ratio ({label} / reserve): first token {first / first_r:.2f}x, "
              f"total {total / total_r:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--reserve", type=int, default=2)
    parser.add_argument("--probes", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    asyncio.run(main(args.capacity, args.reserve, args.probes, args.max_tokens))
