"""PostgreSQL job store / SQLite job store: items/s of one job service, side by side in one run.

    python benchmarks/store_backends.py [--items 3000] [--latency 0.01] [--capacity 32]
                                        [--rounds 5] [--database-url URL]

A scripted engine (`tests/fakes.py`) answers every item after a fixed latency with at most
`capacity` items in flight (no model: the store is what differs). The same `JobService` (the
real judge, runner and group-committing writer) runs one job of N items on each store in
turn, submitted and followed to its `complete` event; rounds alternate which store goes
first, and each store's rate is its median over the rounds.

SQLite: a fresh file per round (WAL, `synchronous=NORMAL`, as the service uses it).
PostgreSQL: a fresh database per round on the server at `--database-url` (a database the
script may create and drop others next to), or on a server this script starts from Debian's
binaries (`make postgresql`) with PostgreSQL's default, durable settings (fsync on).

Prints both rates and their ratio; bar: PostgreSQL / SQLite >= 0.8. Exits 1 below the bar.
The machine may be shared: numbers are only comparable within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.fakes import ScriptedEngine  # noqa: E402
from tests.postgres_server import benchmark_databases  # noqa: E402

from evalserve.engines.base import Engine  # noqa: E402
from evalserve.jobs.config import RunnerConfig  # noqa: E402
from evalserve.jobs.grading import JudgeKit  # noqa: E402
from evalserve.jobs.postgres import PostgresJobStore  # noqa: E402
from evalserve.jobs.service import JobService  # noqa: E402
from evalserve.jobs.sqlite import SQLiteJobStore  # noqa: E402
from evalserve.jobs.store import JobStore  # noqa: E402

BAR = 0.8


def items(n: int, tag: str) -> list[dict[str, str]]:
    return [{"id_alumno": f"{tag}{i:06d}", "curso": "3r ESO",
             "consigna": "Explica la fotosíntesi",
             "respuesta": f"Les plantes fan menjar amb la llum del sol ({tag}{i})."}
            for i in range(n)]


async def run_job(store: JobStore, args: argparse.Namespace) -> float:
    """Items/s of one N-item job on a service over `store` (opened and closed here)."""
    answer = json.dumps({"feedback": "Bon treball, explicació clara.", "nota": 4})
    engine = ScriptedEngine(lambda req: answer, capacity=args.capacity, delay=args.latency)

    async def ready() -> Engine:
        return engine

    service = JobService(store, JudgeKit(), engine, ready,
                         RunnerConfig(batch_size=args.batch_size), poll_interval=0.2,
                         max_items=max(args.items, 100_000))
    await service.start()
    try:
        warm = await service.submit(items(20, "W"))  # connections, statement plans
        await until_final(service, warm.job.id)
        t0 = time.perf_counter()
        sub = await service.submit(items(args.items, "B"))
        assert await until_final(service, sub.job.id) == "complete"
        seconds = time.perf_counter() - t0
        assert (await service.get(sub.job.id)).completed == args.items
    finally:
        await service.close()
    return args.items / seconds


async def until_final(service: JobService, job_id: str) -> str:
    last = ""
    async for event in service.follow(job_id):
        last = event.type
    return last


async def measure(args: argparse.Namespace, new_database: Callable[[], str]) -> dict:
    rates: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            order = ["sqlite", "postgres"] if n % 2 == 0 else ["postgres", "sqlite"]
            for backend in order:
                if backend == "sqlite":
                    store: JobStore = SQLiteJobStore(Path(tmp) / f"round{n}.db")
                else:
                    store = PostgresJobStore(new_database(), pool_size=args.pool_size)
                rates[backend].append(await run_job(store, args))
                print(f"round {n + 1} {backend:8s} {rates[backend][-1]:8.1f} items/s",
                      flush=True)
    return {k: statistics.median(v) for k, v in rates.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3000, help="items of the measured job")
    parser.add_argument("--latency", type=float, default=0.01, help="seconds per item")
    parser.add_argument("--capacity", type=int, default=32, help="items in flight at most")
    parser.add_argument("--batch-size", type=int, default=10, help="results per SSE batch")
    parser.add_argument("--pool-size", type=int, default=10, help="DATABASE_POOL_SIZE")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="an existing PostgreSQL server to use "
                        "(default: start one from Debian's binaries)")
    args = parser.parse_args()

    try:
        with benchmark_databases(args.database_url) as new_database:
            rates = asyncio.run(measure(args, new_database))
    except RuntimeError as exc:
        print(exc)
        return 2
    ratio = rates["postgres"] / rates["sqlite"]
    ceiling = args.capacity / args.latency
    print(f"engine: {args.latency:g} s per item, {args.capacity} in flight "
          f"(at most {ceiling:.0f} items/s); {args.items} items per job, "
          f"median of {args.rounds} rounds")
    print(f"SQLite store:     {rates['sqlite']:8.1f} items/s")
    print(f"PostgreSQL store: {rates['postgres']:8.1f} items/s")
    verdict = "ok" if ratio >= BAR else "BELOW THE BAR"
    print(f"ratio PostgreSQL / SQLite {ratio:.2f} (bar >= {BAR:g}): {verdict}")
    return 0 if ratio >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
