"""Settings of the Celery side (broker, batching, time limits, sweep), from VITRINE_WORKER_*.

The API reads these too: it publishes to the same broker and queue.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_WORKER_", extra="ignore")

    broker_url: str = Field("redis://localhost:6379/0", validation_alias=AliasChoices(
        "VITRINE_BROKER_URL", "VITRINE_WORKER_BROKER_URL"))
    """Redis for the task queue; the API and every worker use the same one."""
    result_backend: str | None = None
    """Where task results go (only the bench's ping task keeps one); default: the broker."""
    queue: str = "ingest"
    maintenance_queue: str = "maintenance"
    batch_size: int = Field(32, ge=1)
    """Uploads encoded in one forward pass: a task claims up to this many queued items."""
    batch_wait_ms: int = Field(100, ge=0)
    """How long a task with less than a full batch waits for more uploads to arrive."""
    soft_time_limit: float = 240
    """One batch: decode, encode, upsert. The task gets SoftTimeLimitExceeded past this."""
    time_limit: float = 300
    """Hard limit: the child is killed (its items are retried, then fail after max_attempts)."""
    visibility_timeout: float = 3600
    """Seconds Redis waits for an ack before handing a task to another worker; longer than
    the slowest task, or a healthy task gets delivered twice."""
    max_attempts: int = Field(3, ge=1)
    """Times an upload is tried before it ends failed (a poison image that kills its worker)."""
    sweep_interval: float = 60
    """Seconds between sweeps (celery beat)."""
    sweep_deadline: float = 900
    """An upload queued or running this long without news is queued again and a task is
    published for it: covers a broker that lost its data and a crash between the job's
    commit and its publish."""
    sweep_max_wakeups: int = Field(8, ge=1)
    """Tasks published per sweep at most (each claims a batch across all jobs)."""
    publish_retries: int = 2
    """Retries of a publish before the API answers 503."""
    broker_timeout: float = 3
    """Seconds to connect to, or wait on, the broker before giving up on one try."""
    metrics_port: int | None = Field(None, ge=1, le=65535)
    """Where a worker serves its Prometheus metrics (all its pool's children summed); none:
    no metrics server."""
    @model_validator(mode="after")
    def check_limits(self) -> WorkerSettings:
        if not self.soft_time_limit < self.time_limit < self.visibility_timeout:
            raise ValueError("need soft_time_limit < time_limit < visibility_timeout, so a "
                             "task is stopped before Redis hands it to another worker")
        if self.sweep_deadline <= self.time_limit:
            raise ValueError("sweep_deadline must exceed time_limit: the sweep would requeue "
                             "uploads a live task is still working on")
        return self


@lru_cache
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()
