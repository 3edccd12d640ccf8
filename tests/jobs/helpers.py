"""Helpers of the job tests: a real SQLite store and the real judge over a scripted engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from evalserve.engines.base import Engine
from evalserve.jobs.config import RunnerConfig
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.models import Job, JobEvent
from evalserve.jobs.service import JobService
from evalserve.jobs.sqlite import SQLiteJobStore
from tests.fakes import ScriptedEngine


def item(i: int, **extra: Any) -> dict[str, Any]:
    """A seed-000 item."""
    return {"id_alumno": f"A{i:03d}", "curso": "3r ESO", "consigna": "Explica la fotosíntesi",
            "respuesta": f"Les plantes fan menjar amb la llum ({i}).", **extra}


def answer(score: int = 4, feedback: str = "Bon treball per a 3r ESO.") -> str:
    """What a model constrained to teacher-eval-ca's schema answers."""
    return json.dumps({"feedback": feedback, "nota": score}, ensure_ascii=False)


def engine(capacity: int = 4, delay: float = 0.0,
           script: Callable | None = None) -> ScriptedEngine:
    return ScriptedEngine(script or (lambda req: answer()), capacity=capacity, delay=delay)


async def collect(service: JobService, job_id: str, after: int = 0,
                  timeout: float = 20.0) -> list[JobEvent]:
    """Every event of the job until its final one."""
    async def run() -> list[JobEvent]:
        return [e async for e in service.follow(job_id, after)]

    return await asyncio.wait_for(run(), timeout)


@contextlib.asynccontextmanager
async def running_service(tmp_path: Path, eng: Engine, *, start: bool = True,
                          db: str = "jobs.db", **config: Any) -> AsyncIterator[JobService]:
    """A started `JobService` on `eng` with a SQLite store under `tmp_path`."""
    hooks = {k: config.pop(k) for k in ("item_hooks", "finish_hooks") if k in config}
    options = {"clock": config.pop("clock")} if "clock" in config else {}
    service = JobService(SQLiteJobStore(tmp_path / db), JudgeKit(), eng, _ready(eng),
                         RunnerConfig(**{"batch_size": 3, **config}),
                         poll_interval=0.2, runner_options=options, **hooks)
    await service.store.open()
    if start:
        await service.runner.start()
    try:
        yield service
    finally:
        await service.close()


def _ready(eng: Engine) -> Callable:
    async def provider() -> Engine:
        return eng

    return provider


def batch_ids(events: list[JobEvent]) -> list[str]:
    """Item ids announced by the batch events, in order."""
    return [r["id_alumno"] for e in events if e.type == "batch_complete"
            for r in e.data["results"]]


def items(n: int) -> list[dict[str, Any]]:
    return [item(i) for i in range(n)]


__all__ = ["item", "items", "answer", "engine", "collect", "running_service",
           "batch_ids", "Job"]
