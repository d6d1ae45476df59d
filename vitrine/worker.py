"""A Celery process's entry point: `celery -A vitrine.worker worker` (or `beat`).

It hands the worker tasks the composition root's builders, hooks in the worker's
logs and metrics (workers.observe), then exposes the Celery app for the `celery`
command to find.
"""

from __future__ import annotations

from catalogue.settings import CatalogueSettings
from vitrine.wiring import build_services, open_jobs
from workers import observe
from workers.celery_app import app
from workers.settings import get_worker_settings
from workers.tasks import ServicesTask

ServicesTask.build_services = staticmethod(lambda **parts: build_services(profile="cluster",
                                                                          **parts))
ServicesTask.open_jobs = staticmethod(lambda: open_jobs(CatalogueSettings()))
observe.install(get_worker_settings())

__all__ = ["app"]
