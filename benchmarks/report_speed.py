"""A big job's report: time and event-loop stalls, the previous way and evalserve's, side by side.

    python benchmarks/report_speed.py              # 100,000 scripted items
    python benchmarks/report_speed.py --n 20000    # smaller run

A completed job's report (`judge.report.job_report`) is computed from its stored records: a
teacher-eval-ca job whose items all carry a human grade, the judge's score off by at most one
step and a `score_expected` (logprobs), in a real SQLite job store. Both ways run while the
event loop also runs a 5 ms ticker; its longest lateness is the longest stall any other
request would have seen (an idle loop's is printed too: on a busy machine the operating
system's scheduling alone delays the ticker).

- previous: records read 5,000 per store call (each page decoded on the loop), the report in
  a worker thread with the bootstrap intervals computed as the library functions give them
  per resample (`scipy.stats.bootstrap`, paired, vectorised, over scipy's `rankdata` +
  `pearsonr` for Spearman and the confusion-matrix kappa for QWK; one bootstrap per
  statistic);
- evalserve: `jobs.reports.job_records` (500 per call) and `compute_report` (worker thread;
  both intervals from one draw of resamples, scored from the counts of each distinct pair).

Both give the same intervals (checked: the same seeded draws); prints the times, the longest
stalls and the ratios previous / evalserve.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` teacher-eval-ca records: human grade 0-5, judge within one step, score_expected."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        human = rng.randint(0, 5)
        nota = min(5, max(0, human + rng.choice((-1, 0, 0, 1))))
        expected = min(5.0, max(0.0, nota + rng.uniform(-0.45, 0.45)))
        out.append({"id_alumno": f"A{i:06d}", "nota": nota, "feedback": "Bon treball.",
                    "status": "scored", "score_expected": round(expected, 4),
                    "human_score": float(human)})
    return out


def previous_intervals(judge: list[float], human: list[float], scale: list[int],
                       n_resamples: int = 1000, seed: int = 0) -> tuple[Any, Any]:
    """QWK and Spearman intervals as before: one `scipy.stats.bootstrap` per statistic, the
    library statistic on every resample."""
    from scipy.stats import bootstrap, pearsonr, rankdata

    from evalserve.metrics.agreement import _kappa_batch, round_to_scale

    h, j = np.asarray(human, dtype=float), np.asarray(judge, dtype=float)
    points = np.asarray(scale, dtype=float)
    hi, ji = round_to_scale(h, points), round_to_scale(j, points)
    batch = max(1, min(n_resamples, 1_000_000 // len(h)))

    def interval(data: tuple, statistic: Any) -> tuple[float, float]:
        ci = bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                       batch=batch, method="percentile",
                       rng=np.random.default_rng(seed)).confidence_interval
        return float(ci.low), float(ci.high)

    qwk = interval((hi, ji), lambda a, b, axis=-1: _kappa_batch(a, b, len(points),
                                                                "quadratic"))
    rho = interval((h, j), lambda a, b, axis=-1: pearsonr(
        rankdata(a, axis=-1), rankdata(b, axis=-1), axis=-1).statistic)
    return qwk, rho


def previous_report(rows: list[dict[str, Any]], rubric: dict[str, Any]) -> dict[str, Any]:
    from evalserve.judge.report import job_report

    report = job_report(rows, rubric, {"n_resamples": 0})
    human = [r["human_score"] for r in rows]
    for key, field in (("score", "nota"), ("score_expected", "score_expected")):
        qwk, rho = previous_intervals([r[field] for r in rows], human, rubric["scale"])
        report["agreement"][key].update(qwk_ci=list(qwk), spearman_ci=list(rho))
    return report


class StallMeter:
    """A ticker on the event loop: the longest it waited past its 5 ms sleep."""

    def __init__(self, tick: float = 0.005) -> None:
        self.tick = tick
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.tick)
            self.longest = max(self.longest, time.perf_counter() - start - self.tick)

    async def __aenter__(self) -> StallMeter:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


async def stored_job(rows: list[dict[str, Any]], rubric: dict[str, Any], path: Path) -> Any:
    from evalserve.jobs.models import Job, JobStatus, ResultRow
    from evalserve.jobs.sqlite import SQLiteJobStore

    store = SQLiteJobStore(path)
    await store.open()
    job = Job(id="bench", status=JobStatus.RUNNING, rubric_name="teacher-eval-ca",
              rubric=rubric, total=len(rows))
    await store.create_job(job, [(r["id_alumno"], {}) for r in rows])
    for start in range(0, len(rows), 5000):
        await store.commit([ResultRow(job.id, i, r["id_alumno"], "scored", r["nota"], r)
                            for i, r in enumerate(rows[start:start + 5000], start)])
    return store, await store.get_job(job.id)


async def previous_way(store: Any, job: Any) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    after = -1
    while page := await store.records(job.id, after, 5000):
        rows.extend(r for _, r in page)
        after = page[-1][0]
    return await asyncio.to_thread(previous_report, rows, job.rubric)


async def evalserve_way(store: Any, job: Any) -> dict[str, Any]:
    from evalserve.jobs.reports import compute_report, job_records

    return await compute_report(job, await job_records(store, job.id))


async def measure(way: Any, store: Any, job: Any) -> tuple[float, float, dict[str, Any]]:
    async with StallMeter() as meter:
        start = time.perf_counter()
        report = await way(store, job)
        elapsed = time.perf_counter() - start
    return elapsed, meter.longest, report


async def main(n: int) -> None:
    from evalserve.jobs.grading import JudgeKit

    _, rubric = JudgeKit().load_rubric("teacher-eval-ca")
    # the libraries are imported once, before either way is timed
    from evalserve.judge.report import job_report

    job_report(records(50), rubric)
    with tempfile.TemporaryDirectory() as tmp:
        store, job = await stored_job(records(n), rubric, Path(tmp) / "jobs.db")
        try:
            before = await measure(previous_way, store, job)
            after = await measure(evalserve_way, store, job)
            async with StallMeter() as idle:  # the machine's own noise: nothing to compute
                await asyncio.sleep(min(after[0], 10.0))
        finally:
            await store.close()
    for key in ("score", "score_expected"):
        old, new = before[2]["agreement"][key], after[2]["agreement"][key]
        for name in ("qwk_ci", "spearman_ci"):
            assert np.allclose(old[name], new[name], rtol=0, atol=1e-9), (key, name, old[name],
                                                                          new[name])
        assert {k: v for k, v in old.items() if not k.endswith("_ci")} == {
            k: v for k, v in new.items() if not k.endswith("_ci")}
    print(f"report of a {n:,}-item job (agreement on score and score_expected, 1,000 "
          f"bootstrap resamples each; same intervals both ways)")
    print(f"{'':12}{'seconds':>10}{'longest loop stall (s)':>26}")
    print(f"{'previous':12}{before[0]:>10.2f}{before[1]:>26.3f}")
    print(f"{'evalserve':12}{after[0]:>10.2f}{after[1]:>26.3f}")
    print(f"{'idle loop':12}{'':>10}{idle.longest:>26.3f}  (the machine's scheduling noise)")
    print(f"ratio previous / evalserve: time {before[0] / after[0]:.1f}x, longest stall "
          f"{before[1] / max(after[1], 1e-6):.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="items in the job")
    asyncio.run(main(parser.parse_args().n))
