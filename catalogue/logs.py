"""Log lines, as text or one JSON object a line, each with the request id of the API request
it serves: set by the API per request (api.observe), carried to a Celery task in its
headers (workers.dispatch) and set again while the worker runs that task
(workers.tasks). Every process configures its logging with `configure_logging`."""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept when it is this sane; otherwise a fresh one is made.
SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The request id, where there is one, ends a text line: "... uploaded 3 [request 4f2a...]".
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_tag)s"

# A line per HTTP call at INFO (each Qdrant query, each photo fetched): warnings only.
CHATTY = ("httpx",)

request_id: ContextVar[str | None] = ContextVar("vitrine_request_id", default=None)


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_LOG_", extra="ignore")

    format: Literal["text", "json"] = "text"
    """`json`: one JSON object a line (time, level, logger, message, request_id...)."""
    level: str = "INFO"


def new_request_id(given: str | None = None) -> str:
    """The caller's id when it is sane (letters, digits, `._:-`, up to 128), else a new one."""
    if given and SANE_ID.match(given):
        return given
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on every record as `request_id`, and as
    `request_tag` for text lines (" [request <id>]", or nothing)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = getattr(record, "request_id", None) or request_id.get()
        record.request_id = rid
        record.request_tag = f" [request {rid}]" if rid else ""
        return True


# LogRecord attributes that are not a caller's `extra` (uvicorn's color_message repeats
# the message with terminal colours).
STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "request_tag", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id,
    the exception's traceback as `exc_info`, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage(),
                "request_id": getattr(record, "request_id", None) or request_id.get()}
        line |= {k: v for k, v in vars(record).items() if k not in STANDARD}
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def formatter(settings: LogSettings) -> logging.Formatter:
    return JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT)


def install(handler: logging.Handler, settings: LogSettings) -> None:
    """Give a handler the configured format and the request id filter."""
    handler.setFormatter(formatter(settings))
    if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
        handler.addFilter(RequestIdFilter())


def quiet_chatty() -> None:
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(settings: LogSettings | None = None,
                      loggers: tuple[str, ...] = ()) -> None:
    """Format the root logger's handlers, and those of `loggers` (a server's own, such as
    uvicorn's), as configured, each with the request id filter. A root logger without
    handlers gets one on stderr, at the configured level."""
    settings = settings or LogSettings()
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
        root.setLevel(settings.level.upper())
        quiet_chatty()
    for logger in (root, *map(logging.getLogger, loggers)):
        for handler in logger.handlers:
            install(handler, settings)
