"""ProgressTracker: the seed's progress object, ETA from measured throughput."""

from __future__ import annotations

from evalserve.jobs.progress import ProgressTracker, estimate_seconds


def test_default_estimate_before_the_first_result_then_measured() -> None:
    now = [100.0]
    tracker = ProgressTracker(total=10, completed=0, started_at=90.0,
                              default_seconds_per_item=2.0, clock=lambda: now[0])
    first = tracker.snapshot()
    assert first == {"completed": 0, "total": 10, "percentage": 0.0, "elapsed_seconds": 10.0,
                     "estimated_remaining_seconds": 20.0, "avg_time_per_item": 2.0}
    now[0] = 104.0
    tracker.add(4)  # 4 items in 4 s of this run: 1 s per item
    snap = tracker.snapshot()
    assert snap["avg_time_per_item"] == 1.0
    assert snap["estimated_remaining_seconds"] == 6.0
    assert snap["percentage"] == 40.0 and snap["elapsed_seconds"] == 14.0


def test_resumed_job_measures_only_this_run_and_ends_at_100() -> None:
    now = [50.0]
    tracker = ProgressTracker(total=3, completed=2, started_at=0.0,
                              default_seconds_per_item=9.0, clock=lambda: now[0])
    assert tracker.snapshot()["percentage"] == 66.7
    now[0] = 50.5
    tracker.add()
    snap = tracker.snapshot()
    assert snap["percentage"] == 100.0 and snap["estimated_remaining_seconds"] == 0
    assert snap["avg_time_per_item"] == 0.5 and snap["elapsed_seconds"] == 50.5


def test_percentage_never_rounds_up_to_100_early() -> None:
    tracker = ProgressTracker(total=10_000, completed=9_999, started_at=0.0,
                              default_seconds_per_item=1.0, clock=lambda: 1.0)
    assert tracker.snapshot()["percentage"] == 99.9


def test_estimate_seconds_is_a_whole_number() -> None:
    assert estimate_seconds(1, 2.0) == 2
    assert estimate_seconds(3, 0.4) == 2
