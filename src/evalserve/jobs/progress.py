"""Progress of a running job: the seed's `progress` object, with an ETA from measured throughput.

- `elapsed_seconds`: since the job first started (a resumed job keeps counting from then).
- `avg_time_per_item`: seconds of wall time per item finished in this run of the process
  (= 1 / throughput; concurrent items overlap, so it is far below one item's latency).
- `estimated_remaining_seconds`: items left × `avg_time_per_item`; before the first result of
  the run, items left × `TIME_ESTIMATION_PER_ITEM`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ProgressTracker", "estimate_seconds"]


def estimate_seconds(items: int, seconds_per_item: float) -> int:
    """Whole seconds for `items` at `seconds_per_item` (the seed answers an int)."""
    return int(math.ceil(items * seconds_per_item))


@dataclass
class ProgressTracker:
    """Counts one job's results in this process and renders the seed's progress object."""

    total: int
    completed: int
    started_at: float
    default_seconds_per_item: float
    clock: Callable[[], float] = time.time
    run_started: float = field(default=0.0)
    run_completed: int = 0

    def __post_init__(self) -> None:
        if not self.run_started:
            self.run_started = self.clock()

    def add(self, n: int = 1) -> None:
        self.completed += n
        self.run_completed += n

    @property
    def seconds_per_item(self) -> float:
        """Measured wall seconds per finished item in this run; the default before any."""
        if self.run_completed == 0:
            return self.default_seconds_per_item
        return max(0.0, self.clock() - self.run_started) / self.run_completed

    def snapshot(self) -> dict[str, float | int]:
        """`{completed, total, percentage, elapsed_seconds, estimated_remaining_seconds,
        avg_time_per_item}`; percentage is 100.0 exactly when done."""
        now = self.clock()
        remaining = max(0, self.total - self.completed)
        per_item = self.seconds_per_item
        pct = 100.0 if remaining == 0 else round(100.0 * self.completed / self.total, 1)
        if remaining and pct >= 100.0:
            pct = 99.9
        return {
            "completed": self.completed,
            "total": self.total,
            "percentage": pct,
            "elapsed_seconds": round(max(0.0, now - self.started_at), 3),
            "estimated_remaining_seconds": round(remaining * per_item, 2),
            "avg_time_per_item": round(per_item, 4),
        }
