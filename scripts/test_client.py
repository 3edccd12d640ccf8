#!/usr/bin/env python
"""Seed 000's test client: submit items to `POST /evaluate` and follow `/stream/{job_id}`.

    python scripts/test_client.py --test basic          # 1 item, stream to `complete`
    python scripts/test_client.py --test full --url http://localhost:8000   # 20 items, checks

Exits 0 when every event has the seed's shape, 1 otherwise. Reads the stream with
`evalserve.client.sse` (the one SSE reader of evalserve's clients).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from evalserve.client.sse import parse_sse

ITEM = {"id_alumno": "TEST_001", "curso": "3r ESO", "consigna": "Explica la fotosíntesi",
        "respuesta": "La fotosíntesi és quan les plantes fan menjar amb la llum del sol."}
COURSES = ["1r ESO", "2n ESO", "3r ESO", "4t ESO", "1r Batxillerat"]
PROMPTS = [
    ("Explica la fotosíntesi", "Les plantes agafen llum, aigua i CO2 i fan glucosa i oxigen."),
    ("Què és un ecosistema?", "És un lloc on viuen animals i plantes que es relacionen."),
    ("Per què plou?", "L'aigua s'evapora, es condensa als núvols i cau."),
    ("Explica la Revolució Francesa", "Va ser el 1789 quan el poble es va revoltar contra el rei."),
]
PROGRESS = {"completed", "total", "percentage", "elapsed_seconds",
            "estimated_remaining_seconds", "avg_time_per_item"}


def items(n: int) -> list[dict[str, str]]:
    if n == 1:
        return [ITEM]
    return [{"id_alumno": f"A{i:03d}", "curso": COURSES[i % len(COURSES)],
             "consigna": PROMPTS[i % len(PROMPTS)][0], "respuesta": PROMPTS[i % len(PROMPTS)][1]}
            for i in range(n)]


def events(client: httpx.Client, job_id: str) -> Iterator[tuple[str, Any]]:
    """(event, data) of the job's stream, read with evalserve's own SSE reader."""
    with client.stream("GET", f"/stream/{job_id}", timeout=httpx.Timeout(10, read=600)) as resp:
        resp.raise_for_status()
        for message in parse_sse(resp.iter_lines()):
            yield message.event, message.data


def check_batch(data: dict[str, Any], total: int, problems: list[str]) -> None:
    for result in data.get("results", []):
        nota, feedback = result.get("nota"), result.get("feedback")
        if result.get("status", "scored") == "scored":
            if not (isinstance(nota, int) and 0 <= nota <= 5):
                problems.append(f"{result.get('id_alumno')}: nota {nota!r} is not an int 0-5")
            if not (isinstance(feedback, str) and feedback.strip()):
                problems.append(f"{result.get('id_alumno')}: empty feedback")
    progress = data.get("progress", {})
    if set(progress) != PROGRESS:
        problems.append(f"progress keys {sorted(progress)} != {sorted(PROGRESS)}")
    elif progress["total"] != total:
        problems.append(f"progress total {progress['total']} != {total}")


def run(url: str, n: int, verbose: bool) -> int:
    client = httpx.Client(base_url=url.rstrip("/"), timeout=30)
    health = client.get("/health").json()
    print(f"health: {health}")
    start = time.monotonic()
    answer = client.post("/evaluate", json={"items": items(n)})
    if answer.status_code != 200:
        print(f"POST /evaluate failed: {answer.status_code} {answer.text}")
        return 1
    job = answer.json()
    print(f"job {job['job_id']}: {job['total_items']} items, "
          f"estimated {job['estimated_time_seconds']} s")
    problems: list[str] = []
    seen: list[str] = []
    first_result = None
    final: dict[str, Any] = {}
    for event, data in events(client, job["job_id"]):
        if event == "batch_complete":
            first_result = first_result or time.monotonic() - start
            check_batch(data, n, problems)
            seen += [r.get("id_alumno") for r in data["results"]]
            p = data["progress"]
            print(f"batch {data['batch_number']}: {p['completed']}/{p['total']} "
                  f"({p['percentage']}%), ETA {p['estimated_remaining_seconds']} s")
            if verbose:
                for r in data["results"]:
                    print(f"  {r.get('id_alumno')}: {r.get('nota')} {r.get('feedback')!r}")
        elif event in ("complete", "cancelled", "error"):
            final = {"event": event, **data}
            break
    elapsed = time.monotonic() - start
    if final.get("event") != "complete":
        problems.append(f"stream ended with {final.get('event')}: {final}")
    if sorted(seen) != sorted(i["id_alumno"] for i in items(n)):
        problems.append(f"{len(seen)} results for {n} items, or ids differ")
    print(f"done in {elapsed:.1f} s (first batch after {first_result or 0:.1f} s, "
          f"{n / elapsed:.2f} items/s); scored {final.get('scored')}, "
          f"unscored {final.get('unscored')}, mean {final.get('mean_score')}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("OK" if not problems else "FAILED")
    return 0 if not problems else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test", choices=["basic", "full"], default="basic")
    parser.add_argument("--url", default="http://localhost:8000")
    parser.add_argument("--items", type=int, default=None, help="items for --test full (20)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every result")
    args = parser.parse_args()
    n = 1 if args.test == "basic" else (args.items or 20)
    sys.exit(run(args.url, n, args.verbose or args.test == "basic"))


if __name__ == "__main__":
    main()
