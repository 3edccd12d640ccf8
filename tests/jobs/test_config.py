"""`RunnerConfig`: the runner's settings, read from `Settings`."""

from __future__ import annotations

from evalserve.jobs.config import RunnerConfig
from evalserve.settings import load_settings


def test_from_settings_reads_each_runner_setting() -> None:
    s = load_settings(batch_size=7, max_concurrent_jobs=2, time_estimation_per_item=0.5,
                      job_ttl_seconds=60, cleanup_interval_seconds=9, max_job_attempts=5,
                      item_retries=1, item_retry_backoff_seconds=0.25)
    c = RunnerConfig.from_settings(s)
    assert (c.batch_size, c.max_concurrent_jobs, c.time_estimation_per_item, c.job_ttl_seconds,
            c.cleanup_interval_seconds, c.max_job_attempts, c.item_retries,
            c.item_retry_backoff_seconds) == (7, 2, 0.5, 60, 9, 5, 1, 0.25)
    assert (c.store_retries, c.store_retry_backoff_seconds) == (3, 0.5)  # not settings
