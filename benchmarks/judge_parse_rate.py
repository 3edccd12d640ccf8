"""Judge: how many items get a score with the schema constraint vs free generation, measured
side by side on one loaded bundled model (SmolLM2-135M-Instruct).

Prints, for the same items and prompts:
  scored rate (constrained)    = items scored / items, JSON schema enforced (bar: 1.00)
  scored rate (unconstrained)  = the same with no constraint, JSON or free text parsed
  time ratio                   = wall time constrained / unconstrained (both concurrent)
Both arms run with retries=0, so the rates are first-answer parse rates.

Run: .venv/bin/python benchmarks/judge_parse_rate.py [--items 8] [--rubric judge-1-5] [--zero-shot]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from evalserve.engines.base import (
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    StreamDelta,
)
from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.judge import Grade, Judge, load_rubric
from evalserve.settings import load_settings

QA = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("Who is the current president of the USA?", "Bananas are yellow."),
    ("Tell me about quantum physics.", "It describes matter and energy at the atomic scale."),
    ("What is the primary function of a CPU?", "It executes instructions."),
    ("What is 2+2?", "5"),
    ("Name a mammal that can fly.", "The bat."),
    ("What is the boiling point of water at sea level?", "100 degrees Celsius."),
    ("Translate 'gato' to English.", "dog"),
]
CATALAN = [
    ("3r ESO", "Explica la fotosíntesi", "Les plantes fan menjar amb la llum del sol."),
    ("3r ESO", "Explica la fotosíntesi", "No ho sé."),
    ("1r ESO", "Què és un volcà?", "Una muntanya que treu lava."),
    ("2n ESO", "Per què plou?", "El vapor d'aigua es condensa als núvols i cau."),
]


class Unconstrained(Engine):
    """The same engine, declaring that it enforces no constraints (as a plain upstream)."""

    supports_constraints = False

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.capacity = inner.capacity

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        return await self.inner.generate(request)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        async for delta in self.inner.stream(request):
            yield delta

    async def abort(self, request_id: str) -> None:
        await self.inner.abort(request_id)

    async def health(self) -> EngineHealth:
        return await self.inner.health()


def items_for(rubric_name: str, n: int) -> list[dict]:
    if rubric_name == "teacher-eval-ca":
        return [{"id_alumno": f"A{i}", "curso": c, "consigna": q, "respuesta": r}
                for i, (c, q, r) in enumerate((CATALAN * n)[:n])]
    return [{"inputs": q, "predictions": a} for q, a in (QA * n)[:n]]


async def run(judge: Judge, items: list[dict]) -> tuple[list[Grade], float]:
    start = time.perf_counter()
    grades = await asyncio.gather(*(judge.grade(it, i) for i, it in enumerate(items)))
    return list(grades), time.perf_counter() - start


async def main(n: int, rubric_name: str, zero_shot: bool) -> None:
    settings = load_settings(data_dir=Path(tempfile.mkdtemp()),
                             model_cache_dir=Path(__file__).resolve().parent.parent
                             / ".cache" / "models")
    engine = TransformersEngine.from_settings(settings)
    await engine.start()
    rubric = load_rubric(rubric_name)
    if zero_shot:
        rubric = load_rubric({**rubric.model_dump(), "examples": []})
    items = items_for(rubric_name, n)
    try:
        await run(Judge(engine, rubric, retries=0), items[:1])  # warm-up
        constrained, t_c = await run(Judge(engine, rubric, retries=0), items)
        free, t_f = await run(Judge(Unconstrained(engine), rubric, retries=0), items)
    finally:
        await engine.close()
    rate_c = sum(g.status == "scored" for g in constrained) / n
    rate_f = sum(g.status == "scored" for g in free) / n
    shots = "zero-shot" if zero_shot else f"{len(rubric.examples)}-shot"
    print(f"rubric {rubric_name} ({shots}), {n} items, model {engine.model_id}")
    print(f"scored rate (constrained)   = {rate_c:.2f}  ({t_c:.1f}s)")
    print(f"scored rate (unconstrained) = {rate_f:.2f}  ({t_f:.1f}s)")
    for g in free:
        if g.status == "unscored":
            print(f"  unconstrained item {g.item_id}: {g.reason}; raw={g.raw[:80]!r}")
    print(f"time ratio constrained/unconstrained = {t_c / t_f:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--rubric", default="judge-1-5")
    parser.add_argument("--zero-shot", action="store_true", help="drop the few-shot examples")
    args = parser.parse_args()
    asyncio.run(main(args.items, args.rubric, args.zero_shot))
