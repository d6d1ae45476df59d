"""Reindexing from the API (`POST /v1/models/reindex`): the catalogue.lifecycle role for a
serving process.

One reindex at a time runs in a thread of this process, by the path `vitrine reindex`
takes (vitrine.models `plan` and `execute`), from the live services' store and
originals while they keep serving. Once the passes have caught up, the local runner
is paused and the routes that write to the store wait (api.live); a last pass, the
check and the switch follow. In the local profile the switch then builds the new
version's services (its model, the store the reindex filled, the data folder's lock
handed over), starts their runner, which takes the uploads that queued meanwhile,
and puts them in place; the old ones close once the requests using them have
finished. In the cluster profile the registry and the server alias switch and
nothing is swapped: each replica and worker serves the version it started with
until it is restarted with the new VITRINE_MODEL.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from api.live import LiveServices
from catalogue.lifecycle import (
    AlreadyLive,
    ModelRefused,
    ModelVersionPublic,
    ModelVersionsPublic,
    ReindexBusy,
    ReindexJobPublic,
    ReindexState,
)
from catalogue.reindex import Progress
from catalogue.runner import LocalRunner
from catalogue.services import Services
from embedding.encoder import Encoder, ModelLoadError
from embedding.runtime import refreeze_heap
from vitrine.models import Plan, execute, plan, registry, summary

log = logging.getLogger(__name__)
KEPT_JOBS = 20  # finished reindex jobs still answered
DRAIN_SECONDS = 300  # longest wait for requests on the old services before closing them


class Reindexing:
    def __init__(self, live: LiveServices, profile: str):
        self.live, self.profile = live, profile
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, ReindexJobPublic] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.pending: str | None = None  # a model to reindex into once serving

    def _services(self) -> Services:
        services = self.live.current
        if services is None:
            raise ReindexBusy("the service is starting or stopping")
        return services

    # -- reading -------------------------------------------------------------------
    def versions(self) -> ModelVersionsPublic:
        services = self._services()
        versions = registry(services.settings)
        try:
            listed = versions.list()
        finally:
            versions.close()
        out = []
        for v in listed:
            live = v.state == "live"
            served = live and v.model == services.encoder.model_id
            out.append(ModelVersionPublic(
                id=v.id, model=v.model, dim=v.dim, state=v.state, live=live,
                products=services.store.count() if served else v.products,
                created_at=v.created_at, evaluation=v.evaluation))
        with self._lock:
            last = next(reversed(self._jobs.values()), None)
            return ModelVersionsPublic(versions=out,
                                       reindex=last.model_copy() if last else None)

    def job(self, job_id: str) -> ReindexJobPublic | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.model_copy() if job else None

    # -- starting ------------------------------------------------------------------
    def start_reindex(self, model: str) -> ReindexJobPublic:
        if not model:
            raise ModelRefused("model: give a hub id or a local folder")
        with self._lock:
            if self._closing:
                raise ReindexBusy("the service is stopping")
            running = next((j for j in self._jobs.values() if j.active), None)
            if running:
                raise ReindexBusy(f"a reindex into {running.model} is running (job "
                                  f"{running.id}); one runs at a time")
            job = ReindexJobPublic(id=uuid.uuid4().hex, model=model)
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT_JOBS:
                self._jobs.popitem(last=False)
        try:
            services = self._services()
            try:
                encoder = Encoder(services.encoder.settings, model=model).load()
            except (ModelLoadError, OSError, ValueError) as exc:
                raise ModelRefused(f"model {model!r} does not load: {exc}") from None
            versions = registry(services.settings)
            try:
                prepared = plan(services.settings, versions, encoder)
            except BaseException:
                versions.close()
                raise
        except BaseException:
            with self._lock:
                self._jobs.pop(job.id, None)
            raise
        job.version = prepared.version.id
        self._thread = threading.Thread(target=self._run, args=(job, services, prepared),
                                        name="reindex", daemon=True)
        self._thread.start()
        return job.model_copy()

    # -- running -------------------------------------------------------------------
    def _run(self, job: ReindexJobPublic, services: Services, prepared: Plan) -> None:
        handed_over = False

        def on_page(progress: Progress) -> None:
            self._update(job, progress, state=ReindexState.running)

        def on_live() -> None:
            nonlocal handed_over
            if self._closing or self.live.current is not services:
                raise RuntimeError("the service stopped before the new version went live")
            if self.profile != "local":
                return
            from vitrine.wiring import successor

            new = successor(services, prepared.encoder, prepared.target, self.profile)
            handed_over = True
            services.dispatch.stop()  # paused between batches; the new runner takes the rest
            new.dispatch.start()
            self.live.put(new)

        self._update(job, None, state=ReindexState.running)
        try:
            progress, reindexer = execute(prepared, services.store, services.media, on_page,
                                          self._quiet(services),
                                          self._reverting(prepared, on_live))
        except Exception as exc:
            log.exception("reindex into %s failed", prepared.version.id)
            self._update(job, None, state=ReindexState.failed,
                         message=f"{exc}; {prepared.live.id} stays live")
            if not handed_over:
                prepared.target.close()
            prepared.versions.close()
            return
        prepared.versions.close()
        served = ("served now; set VITRINE_MODEL to it before the next restart"
                  if self.profile == "local" else
                  "restart the API replicas and workers with VITRINE_MODEL set to it")
        if handed_over:  # done once the old version's store is closed (reopenable)
            if not self.live.drain(services, DRAIN_SECONDS):
                log.warning("requests still use the old version after %d s; closing it",
                            DRAIN_SECONDS)
            services.close()
            refreeze_heap()  # the old model's objects collected, the new one's frozen
        else:
            prepared.target.close()
        self._update(job, progress, state=ReindexState.done, live=True,
                     message=f"{summary(prepared, progress, reindexer)}; {served}")

    @staticmethod
    def _reverting(prepared: Plan, on_live):
        """`on_live`, which puts the previous version back live should it fail."""
        def switch() -> None:
            try:
                on_live()
            except BaseException:
                prepared.versions.make_live(prepared.live.id)
                raise
        return switch

    @contextmanager
    def _quiet(self, services: Services) -> Iterator[None]:
        """No writes to the live store: the local runner between batches, the routes that
        write held (api.live)."""
        with ExitStack() as stack:
            if isinstance(services.dispatch, LocalRunner):
                stack.enter_context(services.dispatch.paused())
            stack.enter_context(self.live.writes_held())
            yield

    def _update(self, job: ReindexJobPublic, progress: Progress | None, **changes) -> None:
        with self._lock:
            if progress is not None:
                job.total, job.encoded = progress.total, progress.done
                job.done = min(progress.done + progress.skipped, progress.total)
                job.failed, job.removed = progress.failed, progress.removed
            for name, value in changes.items():
                setattr(job, name, value)
            job.updated_at = time.time()

    def serving(self) -> None:
        """Start the reindex the start-up asked for (`pending`: VITRINE_ON_MODEL_CHANGE=
        reindex); a model that fails to load is logged and the live version serves on."""
        model, self.pending = self.pending, None
        if model is None:
            return
        try:
            job = self.start_reindex(model)
        except (ModelRefused, AlreadyLive, ReindexBusy) as exc:
            log.error("the reindex into %s did not start: %s", model, exc)
            return
        log.warning("reindexing into %s (job %s) while the live version serves", model, job.id)

    def close(self) -> None:
        with self._lock:
            self._closing = True
