"""`RunnerConfig`: the settings the job runner reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalserve.tracing import replica_name

__all__ = ["RunnerConfig"]


@dataclass
class RunnerConfig:
    """The settings the runner reads (see `Settings` for their meaning)."""

    batch_size: int = 10
    max_concurrent_jobs: int = 5
    time_estimation_per_item: float = 2.0
    job_ttl_seconds: float = 3600
    cleanup_interval_seconds: float = 300
    max_job_attempts: int = 3
    item_retries: int = 3
    item_retry_backoff_seconds: float = 0.5
    store_retries: int = 3
    """Retries of a runner's store read or final commit (not a setting)."""
    store_retry_backoff_seconds: float = 0.5
    replica_id: str = field(default_factory=replica_name)
    """Who holds the leases of the jobs this runner runs (`REPLICA_ID`, else host-pid)."""
    job_lease_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> RunnerConfig:
        return cls(batch_size=settings.batch_size,
                   max_concurrent_jobs=settings.max_concurrent_jobs,
                   time_estimation_per_item=settings.time_estimation_per_item,
                   job_ttl_seconds=settings.job_ttl_seconds,
                   cleanup_interval_seconds=settings.cleanup_interval_seconds,
                   max_job_attempts=settings.max_job_attempts,
                   item_retries=settings.item_retries,
                   item_retry_backoff_seconds=settings.item_retry_backoff_seconds,
                   replica_id=replica_name(settings.replica_id),
                   job_lease_seconds=settings.job_lease_seconds)
