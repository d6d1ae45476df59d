"""A worker's logs and metrics, hooked into Celery's signals by `install` (vitrine.worker).

Logs: Celery's handlers get the configured format (catalogue.logs) and the
request id filter; while a task runs, the request id that came in its headers
(workers.dispatch) is the current one, so its log lines, Celery's "succeeded"
included, carry the id of the API request that published it.

Metrics (VITRINE_WORKER_METRICS_PORT): tasks run in the prefork pool's children,
but one port serves a worker, from the parent. So at start the parent switches
prometheus_client to its multiprocess mode: each child writes its counts to
files in a folder of the worker's own (PROMETHEUS_MULTIPROC_DIR), and the
parent's server adds them up at each scrape (a child replaced after a crash
keeps its counts). The domain's metrics (catalogue.metrics) are made on first
use, in the children, after the switch. With them: each child's resident
memory, updated after each task, and the parent's process metrics.

Traces (VITRINE_TRACING_ENABLED, catalogue.tracing): each task is a consumer span
from prerun to postrun, whose parent is the API request's span when the message's
headers carry its context (`traceparent`, put there by workers.dispatch); the
store's and the encoder's spans nest under it. Hand-written here rather than by
opentelemetry-instrumentation-celery: these hooks already hold the task's
request id, and a second set of signal handlers would only repeat them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextvars import Token
from functools import lru_cache
from typing import Any

from celery import signals

from catalogue import metrics as domain_metrics
from catalogue import tracing
from catalogue.logs import LogSettings, quiet_chatty, request_id
from catalogue.logs import install as install_format
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's name for the folder
REQUEST_ID_KEY = "vitrine_request_id"  # the task header that carries it


def task_header(task: Any, key: str) -> Any:
    """A custom header of a task's message (Celery makes them attributes of the request;
    older versions keep them under `headers`)."""
    request = task.request
    return request.get(key) or (getattr(request, "headers", None) or {}).get(key)


def task_request_id(task: Any) -> str | None:
    """The request id a task's message carries."""
    return task_header(task, REQUEST_ID_KEY)


def task_trace_headers(task: Any) -> dict[str, Any]:
    """The trace context headers (`traceparent`, `tracestate`...) a task's message carries."""
    from opentelemetry import propagate

    return {key: value for key in propagate.get_global_textmap().fields
            if (value := task_header(task, key))}


class Observer:
    def __init__(self, settings: WorkerSettings, logs: LogSettings, tracing: bool = False):
        self.settings, self.logs, self.tracing = settings, logs, tracing
        self.tokens: dict[str, Token[str | None]] = {}
        self.spans: dict[str, tuple[Any, object]] = {}  # task id -> (span, context token)
        self.folder: str | None = None  # the metrics folder, when this worker made it

    # -- logs ----------------------------------------------------------------------------
    def format_handlers(self, logger: logging.Logger | None = None, **_: Any) -> None:
        for handler in (logger or logging.getLogger()).handlers:
            install_format(handler, self.logs)
        quiet_chatty()

    def task_started(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if task_id and task is not None:
            self.tokens[task_id] = request_id.set(task_request_id(task))
            if self.tracing:
                self.spans[task_id] = start_task_span(task_id, task)

    def task_ended(self, task_id: str | None = None, state: str | None = None,
                   **_: Any) -> None:
        token = self.tokens.pop(task_id or "", None)
        if token is not None:
            request_id.reset(token)
        if (opened := self.spans.pop(task_id or "", None)) is not None:
            end_task_span(*opened, state)
        if self.settings.metrics_port:
            record_memory()

    # -- metrics -------------------------------------------------------------------------
    def start_metrics(self, **_: Any) -> None:
        """In the parent, before the pool starts: the shared folder, then the server."""
        port = self.settings.metrics_port
        assert port is not None  # connected only with a port
        from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server, values
        from prometheus_client.multiprocess import MultiProcessCollector

        if domain_metrics.domain.cache_info().currsize:
            log.error("the domain's metrics were made before the worker's metrics folder: "
                      "their counts will not reach the metrics port")
        if MULTIPROC_ENV not in os.environ:
            self.folder = tempfile.mkdtemp(prefix="vitrine-metrics-")
            os.environ[MULTIPROC_ENV] = self.folder  # inherited by the pool's children
        # Metrics made from now on (the children's) count in the folder. prometheus_client
        # reads the variable once, at import, which the composition root's imports
        # (FastAPI's app included) have done by now.
        values.ValueClass = values.get_value_class()
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        ProcessCollector(registry=registry)  # the parent's own memory and CPU
        try:
            start_http_server(port, registry=registry)
        except OSError as exc:  # the worker still works; its metrics are missing
            log.error("worker metrics: cannot listen on port %s: %s", port, exc)
            return
        log.info("worker metrics on port %s", port)

    def child_exited(self, pid: int | None = None, **_: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())

    def stop_metrics(self, **_: Any) -> None:
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_task_span(task_id: str, task: Any) -> tuple[Any, object]:
    """A task's span, made current, in the trace its message's headers name."""
    from opentelemetry import context, trace

    span = tracing.tracer().start_span(
        f"celery.task {task.name}", context=tracing.extract(task_trace_headers(task)),
        kind=trace.SpanKind.CONSUMER,
        attributes={"celery.task_id": task_id, "celery.task_name": task.name,
                    tracing.REQUEST_ID_ATTRIBUTE: task_request_id(task) or ""})
    return span, context.attach(trace.set_span_in_context(span))


def end_task_span(span: Any, token: Any, state: str | None) -> None:
    from opentelemetry import context, trace

    context.detach(token)
    if state:
        span.set_attribute("celery.state", state)
    if state == "FAILURE":
        span.set_status(trace.Status(trace.StatusCode.ERROR))
    span.end()


@lru_cache(maxsize=1)
def memory_gauge() -> Any:
    from prometheus_client import Gauge

    return Gauge("vitrine_worker_resident_memory_bytes", "Resident memory of each pool "
                 "child (the model lives there), after its last task", multiprocess_mode="liveall")


def record_memory() -> None:
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):  # not Linux: no figure
        return
    memory_gauge().set(resident_pages * os.sysconf("SC_PAGE_SIZE"))


def install(settings: WorkerSettings, logs: LogSettings | None = None) -> None:
    """Connect the hooks to Celery's signals (held strongly: nothing else keeps them)."""
    observer = Observer(settings, logs or LogSettings(), tracing=tracing.configure_tracing())
    signals.after_setup_logger.connect(observer.format_handlers, weak=False)
    signals.after_setup_task_logger.connect(observer.format_handlers, weak=False)
    signals.task_prerun.connect(observer.task_started, weak=False)
    signals.task_postrun.connect(observer.task_ended, weak=False)
    if settings.metrics_port:
        signals.worker_init.connect(observer.start_metrics, weak=False)
        signals.worker_process_shutdown.connect(observer.child_exited, weak=False)
        signals.worker_shutdown.connect(observer.stop_metrics, weak=False)
