"""How accepted uploads reach whoever encodes them: the one role two profiles fill.

The local profile fills it with `catalogue.runner.LocalRunner` (a thread in the
API process); the cluster profile with `workers.dispatch.CeleryDispatch` (a task
on the broker). The API only knows this protocol, so the local profile never
imports Celery.
"""

from __future__ import annotations

from typing import Protocol


class DispatchUnavailable(RuntimeError):
    """The job could not be handed on (the task queue is down): nothing was accepted, the
    job was withdrawn, and the client should try again (503)."""


class Dispatch(Protocol):
    def start(self) -> None:
        """Begin: recover what a previous process left half-done, start threads."""

    def submit(self, job_id: str) -> None:
        """Hand on a recorded job. Raises DispatchUnavailable, having withdrawn the job,
        when it cannot be handed on."""

    def stop(self) -> None:
        """Stop taking work and release connections and threads."""
