"""Items/s of 1, 2 and 4 job-service replicas on one PostgreSQL database, side by side in one
run: how job leases spread the work.

    python benchmarks/replicas.py [--jobs 8] [--items 100] [--latency 0.1] [--capacity 4]
                                  [--database-url URL]

Each replica is a full `JobService` (its own store connections, runner, lease renewals and
LISTEN connection, replica id `r<n>`), all in this process on one event loop, each with its own
scripted engine (`tests/fakes.py`) answering an item after a fixed latency with at most
`capacity` in flight: a replica grades at most `capacity / latency` items/s, as a replica
with one GPU would. The same `--jobs` jobs of `--items` items are stored `queued` first; then
the replicas start together and the clock runs until every job is `completed`.

Claims are job-level: a job's items are all graded by the replica that holds its lease, so
scaling needs several jobs; each replica runs one job at a time (`MAX_CONCURRENT_JOBS=1`, so
one replica does not claim every job at once) and takes the next queued one as soon as its
job ends. A fresh database per run, on the server at `--database-url` (one the script may
create databases on) or on a server this script starts from Debian's binaries
(`make postgresql`) with PostgreSQL's durable defaults.

Prints each rate and the ratios 2 / 1 (bar >= 1.8) and 4 / 1 (bar >= 3.2); exits 1 below a
bar. The machine may be shared: numbers are only comparable within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
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

BARS = {2: 1.8, 4: 3.2}
ANSWER = json.dumps({"feedback": "Bon treball, explicació clara.", "nota": 4})


def items(n: int, tag: str) -> list[dict[str, str]]:
    return [{"id_alumno": f"{tag}{i:05d}", "curso": "3r ESO",
             "consigna": "Explica la fotosíntesi",
             "respuesta": f"Les plantes fan menjar amb la llum del sol ({tag}{i})."}
            for i in range(n)]


def replica(url: str, name: str, args: argparse.Namespace) -> JobService:
    engine = ScriptedEngine(lambda req: ANSWER, capacity=args.capacity, delay=args.latency)

    async def ready() -> Engine:
        return engine

    return JobService(PostgresJobStore(url, pool_size=4), JudgeKit(), engine, ready,
                      RunnerConfig(batch_size=10, max_concurrent_jobs=1, replica_id=name,
                                   job_lease_seconds=30),
                      poll_interval=0.5, max_items=max(args.items, 1000))


async def run(url: str, n: int, args: argparse.Namespace) -> tuple[float, list[int]]:
    """Items/s of `n` replicas over `args.jobs` queued jobs, and the items each graded."""
    client = replica(url, "client", args)  # stores the jobs; never started, runs nothing
    await client.store.open()
    job_ids = [(await client.submit(items(args.items, f"J{j}"))).job.id
               for j in range(args.jobs)]
    services = [replica(url, f"r{i}", args) for i in range(n)]
    t0 = time.perf_counter()
    await asyncio.gather(*(s.start() for s in services))
    try:
        while True:
            jobs = [await client.store.get_job(job_id) for job_id in job_ids]
            if all(j.status.finished for j in jobs):
                break
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - t0
    finally:
        await asyncio.gather(*(s.close() for s in services))
        await client.store.close()
    assert all(j.status.value == "completed" and j.completed == args.items for j in jobs)
    graded = [len(s.engine.requests) for s in services]
    assert sum(graded) == args.jobs * args.items, "an item was graded twice"
    return args.jobs * args.items / seconds, graded


async def measure(args: argparse.Namespace, new_database: Callable[[], str]) -> dict:
    rates: dict[int, float] = {}
    for n in (1, 2, 4):
        rates[n], graded = await run(new_database(), n, args)
        print(f"{n} replica(s): {rates[n]:7.1f} items/s; items graded per replica: {graded}",
              flush=True)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="queued jobs (several: claims "
                        "are per job)")
    parser.add_argument("--items", type=int, default=100, help="items per job")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per item")
    parser.add_argument("--capacity", type=int, default=4, help="items in flight per replica")
    parser.add_argument("--database-url", help="an existing PostgreSQL server to use "
                        "(default: start one from Debian's binaries)")
    args = parser.parse_args()

    try:
        with benchmark_databases(args.database_url) as new_database:
            rates = asyncio.run(measure(args, new_database))
    except RuntimeError as exc:
        print(exc)
        return 2
    print(f"engine per replica: {args.latency:g} s per item, {args.capacity} in flight (at "
          f"most {args.capacity / args.latency:.0f} items/s); {args.jobs} jobs of "
          f"{args.items} items; job-level claims (a job's items are graded by the replica "
          "holding its lease), one job at a time per replica")
    ok = True
    for n, bar in BARS.items():
        ratio = rates[n] / rates[1]
        verdict = "ok" if ratio >= bar else "BELOW THE BAR"
        ok = ok and ratio >= bar
        print(f"ratio {n} replicas / 1 replica: {ratio:.2f} (bar >= {bar:g}): {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
