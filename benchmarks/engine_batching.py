"""Engine batching and constrained-decoding cost, measured side by side on one loaded engine.

Prints:
  batching ratio    = output tokens/s of 16 concurrent requests / the same 16 one after another
                      (bar: >= 4x on a 2-core machine)
  constraint ratio  = output tokens/s with a JSON-schema constraint / without, both concurrent
                      (bar: >= 0.7)

Run: .venv/bin/python benchmarks/engine_batching.py [--requests 16] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from evalserve.engines.base import GenerationRequest, OutputConstraint
from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.settings import load_settings

SCHEMA = {
    "type": "object",
    "properties": {
        "feedback": {"type": "string", "maxLength": 200},
        "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
    },
    "required": ["feedback", "score"],
    "additionalProperties": False,
}
TOPICS = ["photosynthesis", "gravity", "the moon", "volcanoes", "rivers", "bees", "music",
          "fractions", "rain", "trees", "the sun", "robots", "castles", "oceans", "maps", "salt"]


def requests(n: int, max_tokens: int, constrained: bool) -> list[GenerationRequest]:
    constraint = OutputConstraint(json_schema=SCHEMA) if constrained else None
    return [
        GenerationRequest(
            messages=[{"role": "user", "content": f"Grade this short essay about "
                       f"{TOPICS[i % len(TOPICS)]} from 1 to 5 with feedback."}],
            max_tokens=max_tokens, temperature=0.0, constraint=constraint,
        )
        for i in range(n)
    ]


async def tokens_per_second(engine: TransformersEngine, reqs: list[GenerationRequest],
                            concurrent: bool) -> float:
    start = time.perf_counter()
    if concurrent:
        results = await engine.generate_many(reqs)
    else:
        results = [await engine.generate(r) for r in reqs]
    elapsed = time.perf_counter() - start
    return sum(r.completion_tokens for r in results) / elapsed


async def main(n: int, max_tokens: int) -> None:
    cache = Path(__file__).resolve().parent.parent / ".cache" / "models"
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp, model_cache_dir=cache, max_num_seqs=max(n, 1))
        engine = TransformersEngine.from_settings(settings)
        await engine.start()
        try:
            await engine.generate_many(requests(2, 4, True))  # warm-up: threads, grammar cache
            sequential = await tokens_per_second(engine, requests(n, max_tokens, False), False)
            concurrent = await tokens_per_second(engine, requests(n, max_tokens, False), True)
            constrained = await tokens_per_second(engine, requests(n, max_tokens, True), True)
        finally:
            await engine.close()
    print(f"model: {engine.model_id}  requests: {n}  max_tokens: {max_tokens}")
    print(f"sequential   {sequential:8.1f} output tokens/s")
    print(f"concurrent   {concurrent:8.1f} output tokens/s")
    print(f"constrained  {constrained:8.1f} output tokens/s (JSON schema, concurrent)")
    print(f"batching ratio   {concurrent / sequential:6.2f}x  (bar >= 4)")
    print(f"constraint ratio {constrained / concurrent:6.2f}   (bar >= 0.7)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.max_tokens))
