"""Logging set-up: console or JSON lines, with the structured fields of each record.

Fields come from `extra=`; anything named like a secret is dropped here as a last guard,
though callers never pass secrets in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
_SECRET_WORDS = ("token", "secret", "password", "api_key", "user_data", "sign", "phone", "authorization")


def fields_of(record: logging.LogRecord) -> dict:
    return {
        k: v for k, v in record.__dict__.items()
        if k not in _STANDARD and not any(word in k.lower() for word in _SECRET_WORDS)
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            # Which worker wrote it: with several workers per instance, their lines interleave.
            "pid": record.process,
            **fields_of(record),
        }
        if record.exc_info:
            line["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            # The trace itself too: a line that says an error happened but not where is the
            # one a programming error needs most.
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in fields_of(record).items())
        when = datetime.fromtimestamp(record.created)
        text = f"{when:%H:%M:%S} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            text += f" {extra}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(level: str = "INFO", fmt: str = "console") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log prints query strings (signed user data): ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every outgoing URL at INFO; our clients log their own safe summaries.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # pgserver narrates every initdb/pg_ctl command line at INFO; start-up needs one line.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
