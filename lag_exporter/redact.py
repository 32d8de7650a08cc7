"""Secret values, kept out of every line the exporter writes or serves.

Every `config.Secret` registers its value here when it is made. The log
handler's filter (logs.py) replaces those values in each record, including
records of kafka-python, which at debug level prints its whole
configuration, password included; error texts that reach the HTTP API go
through `redact` too.
"""

from __future__ import annotations

import logging
import threading

MASK = "***"

_lock = threading.Lock()
_values: frozenset[str] = frozenset()


def remember(value: str) -> None:
    """Treat `value` as secret from now on (empty values mean nothing)."""
    global _values
    if not value or value in _values:
        return
    with _lock:
        _values = _values | {value}


def redact(text: str) -> str:
    """`text` with every remembered secret replaced by ***, longest first."""
    values = _values
    if not values:
        return text
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and exception text without secrets."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self._formatter = formatter

    def filter(self, record: logging.LogRecord) -> bool:
        if not _values:
            return True
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
