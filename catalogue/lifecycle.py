"""Model lifecycle over HTTP: the versions as the API shows them, and a reindex run as a
job in the background of a serving process (one at a time).

The API knows only the `Lifecycle` role; the composition root fills it
(vitrine.lifecycle), running catalogue.reindex the way `vitrine reindex` does and, in
the local profile, putting the new version into service in the running process.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field


class ReindexBusy(RuntimeError):
    """A reindex is running already (409)."""


class ModelRefused(ValueError):
    """The model can't be reindexed into: it does not load (422)."""


class AlreadyLive(RuntimeError):
    """The model is the live version's already: nothing to reindex (409)."""


class ReindexState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class ReindexJobPublic(BaseModel):
    id: str
    model: str = Field(description="The model reindexed into, as asked")
    version: str | None = Field(None, description="Its version id, once its model loaded")
    state: ReindexState = ReindexState.queued
    total: int = Field(0, description="Products in the live version")
    done: int = Field(0, description="Products in the new version so far (this run's and "
                                     "those a previous run left), at most `total`")
    encoded: int = Field(0, description="Products encoded by this run")
    failed: int = Field(0, description="Products whose stored originals could not be read")
    removed: int = 0
    live: bool = Field(False, description="The new version is live (and served, in the "
                                          "local profile)")
    message: str | None = Field(None, description="How it ended, or why it failed")
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def active(self) -> bool:
        return self.state in (ReindexState.queued, ReindexState.running)


class ModelVersionPublic(BaseModel):
    id: str
    model: str
    dim: int
    state: str = Field(description="building, ready (complete, not live) or live")
    live: bool
    products: int | None = Field(None, description="Products it holds (the live one now; "
                                                   "others as counted when last switched)")
    created_at: float
    evaluation: dict[str, Any] | None = Field(None, description="The comparison recorded "
                                                                "by `vitrine promote`")


class ModelVersionsPublic(BaseModel):
    versions: list[ModelVersionPublic]
    reindex: ReindexJobPublic | None = Field(None, description="The running reindex, or "
                                                               "the last one")


class Lifecycle(Protocol):
    def versions(self) -> ModelVersionsPublic:
        """Every version, and the current or last reindex."""

    def start_reindex(self, model: str) -> ReindexJobPublic:
        """Check that `model` loads and start re-encoding the catalogue into its version.
        Raises ModelRefused, AlreadyLive or ReindexBusy."""

    def job(self, job_id: str) -> ReindexJobPublic | None:
        """A reindex job of this process."""

    def serving(self) -> None:
        """The process's services are published: a reindex its start asked for begins."""

    def close(self) -> None:
        """The process is stopping."""
